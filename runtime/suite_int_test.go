//go:build integration

package runtime_test

import (
	"testing"

	"github.com/minik-dev/minik/runtime/runtimetest"
)

func TestIntegrationSuite(t *testing.T) {
	e := newEnv(t)
	runtimetest.Suite(t, func(t *testing.T) runtimetest.Harness {
		return runtimetest.Harness{Runtime: e.rt, Image: e.image}
	})
}
