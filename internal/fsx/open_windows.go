//go:build windows

package fsx

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// openNoFollow opens path with FILE_FLAG_OPEN_REPARSE_POINT, so that a
// symbolic link or junction is opened itself rather than followed, and
// refuses it when it is one or is not a disk file (a pipe or device).
func openNoFollow(path string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		_ = windows.CloseHandle(h)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		_ = windows.CloseHandle(h)
		return nil, fmt.Errorf("%w: %s is a symbolic link or junction", ErrNotRegular, path)
	}
	if t, err := windows.GetFileType(h); err != nil || t != windows.FILE_TYPE_DISK {
		_ = windows.CloseHandle(h)
		return nil, fmt.Errorf("%w: %s is not a disk file", ErrNotRegular, path)
	}
	return os.NewFile(uintptr(h), path), nil
}
