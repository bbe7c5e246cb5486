//go:build unix

package cache

import (
	"fmt"
	"os"
	"syscall"
)

// checkDir refuses a cache directory that is a symbolic link, not a
// directory, or owned by another user: whoever owns it could swap the files
// in it.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; give the real directory as FileStoreOptions.Dir", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to user %d, not to this user (%d); give a directory of your own as FileStoreOptions.Dir", dir, st.Uid, os.Geteuid())
	}
	return nil
}
