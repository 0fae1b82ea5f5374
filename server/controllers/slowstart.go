package controllers

import "errors"

// slowStart calls create(0) … create(n-1) concurrently: one at first,
// and one more in flight for each that succeeds, so that the number in
// flight doubles with every round trip, as upstream's batches of 1, 2,
// 4, … do, but without waiting for the slowest create of a batch before
// the next starts. After a failure no more are started, so a create the
// API refuses costs at most the creates then in flight. The creates that
// were not started are taken off key's expected creations in exp (each
// create counts its own failure). It returns the joined errors.
func slowStart(exp *expectations, key string, n int, create func(i int) error) error {
	results := make(chan error)
	window, running, started := 1, 0, 0
	var errs []error
	for {
		for len(errs) == 0 && started < n && running < window {
			go func(i int) { results <- create(i) }(started)
			started++
			running++
		}
		if running == 0 {
			break
		}
		if err := <-results; err != nil {
			errs = append(errs, err)
		} else {
			window++
		}
		running--
	}
	for range n - started {
		exp.creationObserved(key)
	}
	return errors.Join(errs...)
}
