// Command pause is a pod sandbox's pause process (see package pause). It is
// built into runtime/pause.bin by `go generate ./runtime`.
package main

import "github.com/minik-dev/minik/runtime/pause"

func main() { pause.Main() }
