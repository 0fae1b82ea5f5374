package runtimetest

import "testing"

func TestFakeSuite(t *testing.T) {
	Suite(t, func(t *testing.T) Harness {
		f := NewFake()
		f.AddImage("busybox")
		return Harness{Runtime: f, Image: "busybox"}
	})
}
