// Package fsx reads small files that someone else may have named or
// planted: the file is opened without following a symbolic link and
// without blocking (a FIFO or device cannot stall the reader), checked to be
// a regular file after opening, and read through a size bound.
package fsx

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotRegular is wrapped by ReadRegular's error for a symbolic link, a
// directory, a FIFO, a device or a socket.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by ReadRegular's error for a file over the bound.
var ErrTooLarge = errors.New("file too large")

// ReadRegular returns the content of the regular file at path, at most max
// bytes. The last component of path must not be a symbolic link. A file
// that does not exist gives an error wrapping [fs.ErrNotExist].
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%w: %d bytes, at most %d are read", ErrTooLarge, st.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: it grew past %d bytes while being read", ErrTooLarge, max)
	}
	return b, nil
}

// OpenRegular opens path for reading without following a final symbolic
// link and without blocking, and returns it only when it is a regular file.
func OpenRegular(path string) (*os.File, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, path, kind(st.Mode()))
	}
	return f, nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
