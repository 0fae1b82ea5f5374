package store_test

import (
	"testing"
	"time"

	"github.com/minik-dev/minik/store"
	"github.com/minik-dev/minik/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.Suite(t, func(t *testing.T) store.Store { return storetest.New(t) })
}

// TestSuiteTinyWindow runs the suite with one-event watch buffers and a
// tiny window, so watchers are set aside and caught up from the log all
// the time.
func TestSuiteTinyWindow(t *testing.T) {
	storetest.Suite(t, func(t *testing.T) store.Store {
		return storetest.NewWith(t, store.Options{WatchBuffer: 1, WindowSize: 8, ProgressInterval: 50 * time.Millisecond})
	})
}
