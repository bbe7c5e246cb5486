//go:build windows

package exec

import (
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// setGroup does nothing on Windows, which has no process groups; killGroup
// ends the tool's process tree instead.
func setGroup(*osexec.Cmd) {}

// killGroup ends the tool and every process it started (az.cmd starts
// cmd.exe, which starts python.exe) with the system's taskkill /T, then makes
// sure of the tool itself. taskkill is run from %SYSTEMROOT%\System32, never
// from the search path.
func killGroup(cmd *osexec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	if root := os.Getenv("SYSTEMROOT"); root != "" {
		tk := osexec.Command(filepath.Join(root, "System32", "taskkill.exe"), "/T", "/F", "/PID", strconv.Itoa(cmd.Process.Pid))
		tk.Dir = root
		_ = tk.Run() // the tree may be gone already; the Kill below decides
	}
	err := cmd.Process.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// workDir is the folder tools run in: %SYSTEMROOT%.
func workDir() (string, error) {
	dir := os.Getenv("SYSTEMROOT")
	if dir == "" {
		return "", errors.New("the SYSTEMROOT environment variable is not set, so there is no safe folder to run the tool in; set it to the Windows folder, such as C:\\Windows")
	}
	return dir, nil
}

// sameKey compares environment variable names, which are case-insensitive
// on Windows.
func sameKey(a, b string) bool { return strings.EqualFold(a, b) }

// isTextBusy reports whether starting failed because the executable was open
// for writing; Windows reports that differently and it is not retried.
func isTextBusy(error) bool { return false }
