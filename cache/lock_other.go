//go:build !unix

package cache

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"
)

// staleLock is the age at which a lock file left by a dead process is
// broken.
const staleLock = 30 * time.Second

// lockFile takes an exclusive lock by creating path exclusively, waiting
// until ctx ends; a lock file older than staleLock is removed.
func lockFile(ctx context.Context, path string) (func(), error) {
	delay := time.Millisecond
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_ = f.Close()
			return func() { _ = os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, err := os.Lstat(path); err == nil && time.Since(fi.ModTime()) > staleLock {
			_ = os.Remove(path)
			continue
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 4*time.Millisecond)
	}
}
