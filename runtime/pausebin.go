package runtime

import (
	"bytes"
	_ "embed"
	"os"
	"path/filepath"

	"github.com/minik-dev/minik/internal/atomicfile"
)

//go:generate sh -c "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o pause.bin ./pause/cmd/pause"

// pauseBinary is the static pause program every sandbox runs, built from
// ./pause/cmd/pause. Running the agent's own (large) executable instead
// would cost every pod the start-up of the whole binary.
//
//go:embed pause.bin
var pauseBinary []byte

// writePauseBinary puts the embedded pause program at DIR/pause/pause
// (rewriting it only when it differs) and returns its path.
func writePauseBinary(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "pause", "pause")
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, pauseBinary) {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, atomicfile.Write(path, pauseBinary, 0o755)
}
