//go:build !unix

package cache

import (
	"fmt"
	"os"
)

// checkDir refuses a cache directory that is a symbolic link (or junction)
// or not a directory.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 || fi.Mode()&os.ModeIrregular != 0 {
		return fmt.Errorf("%s is a symbolic link or junction; give the real directory as FileStoreOptions.Dir", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
