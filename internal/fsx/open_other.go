//go:build !unix && !windows

package fsx

import (
	"fmt"
	"os"
)

// openNoFollow refuses a symbolic link found by Lstat, then opens path and
// checks that the file opened is the one inspected.
func openNoFollow(path string) (*os.File, error) {
	before, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if before.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("%w: %s is a symbolic link", ErrNotRegular, path)
	}
	if !before.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, path, kind(before.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if after, err := f.Stat(); err != nil || !os.SameFile(before, after) {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s changed while being opened", ErrNotRegular, path)
	}
	return f, nil
}
