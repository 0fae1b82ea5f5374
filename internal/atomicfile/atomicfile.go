// Package atomicfile replaces files whole: a reader sees the old content
// or the new, never part of either, and the new content is on disk before
// it replaces the old (a crash leaves one of the two, not an empty file).
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces name with data, with mode perm, through a temporary file
// in name's directory that is synced before it is renamed over name. On
// error name is left as it was and the temporary file is removed.
func Write(name string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// Chmod, as CreateTemp makes the file 0600 whatever the umask.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
