package controllers

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// A slow start never has more creates in flight than one plus those that
// succeeded, stops starting creates at the first failure, and leaves no
// creation expected that was not started.
func TestSlowStart(t *testing.T) {
	errRefused := errors.New("refused")
	tests := []struct {
		name    string
		n       int
		succeed int // the first succeed creates succeed, the others fail
	}{
		{name: "all succeed", n: 100, succeed: 100},
		{name: "first refused", n: 100, succeed: 0},
		{name: "refused after one", n: 100, succeed: 1},
		{name: "refused after ten", n: 100, succeed: 10},
		{name: "refused at the last", n: 20, succeed: 19},
		{name: "nothing to create", n: 0, succeed: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := newExpectations(time.Now)
			exp.expect("ns/rs", tc.n, nil)
			var mu sync.Mutex
			calls, inFlight, succeeded := 0, 0, 0
			seen := map[int]bool{}
			err := slowStart(exp, "ns/rs", tc.n, func(i int) error {
				mu.Lock()
				calls++
				inFlight++
				if inFlight > 1+succeeded {
					t.Errorf("create %d started with %d in flight after %d successes, want at most %d", i, inFlight, succeeded, 1+succeeded)
				}
				if seen[i] {
					t.Errorf("create %d started twice", i)
				}
				seen[i] = true
				ok := calls <= tc.succeed
				mu.Unlock()
				// The informer sees a created pod; a failed create counts
				// itself: either way the expectation is met.
				exp.creationObserved("ns/rs")
				mu.Lock()
				defer mu.Unlock()
				inFlight--
				if ok {
					succeeded++
					return nil
				}
				return errRefused
			})
			if tc.succeed >= tc.n {
				if err != nil || calls != tc.n {
					t.Fatalf("slowStart = %v after %d creates, want nil after %d", err, calls, tc.n)
				}
			} else {
				if !errors.Is(err, errRefused) {
					t.Fatalf("slowStart = %v, want %v", err, errRefused)
				}
				if calls < tc.succeed+1 || calls > 2*tc.succeed+1 {
					t.Errorf("%d creates with the first %d succeeding, want %d to %d", calls, tc.succeed, tc.succeed+1, 2*tc.succeed+1)
				}
			}
			if !exp.satisfied("ns/rs") {
				t.Errorf("expectations not satisfied after %d of %d creates", calls, tc.n)
			}
		})
	}
}
