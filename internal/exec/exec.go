// Package exec runs the developer tools (az, azd, pwsh) that azcred's
// developer-tool credentials ask for tokens. It runs one program with an
// argument list — never through a shell — found on the search path, in its
// own process group, from a fixed system folder, with an empty stdin,
// bounded in time and in output size; on timeout or cancellation the whole
// process group is killed, so a tool's own children die with it.
//
// Credentials depend on the [Runner] interface, so tests can swap the
// runner; [OS] is the real one.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Defaults of a [Command]'s limits.
const (
	// DefaultTimeout bounds a run whose Command.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxStdout bounds stdout when Command.MaxStdout is zero. A
	// tool's token answer is a few kilobytes.
	DefaultMaxStdout = 1 << 20
	// DefaultMaxStderr bounds the stderr kept when Command.MaxStderr is
	// zero; the rest is discarded (stderr is diagnostic only).
	DefaultMaxStderr = 64 << 10
	// DefaultWaitDelay is how long a run waits, after the tool exited, for
	// its output pipes to close (a grandchild may hold them open).
	DefaultWaitDelay = 500 * time.Millisecond
)

// Command is one run of a tool.
type Command struct {
	// Name is the executable looked up on the search path, such as "az".
	// On Windows the lookup adds the PATHEXT extensions (az.cmd).
	Name string
	// Fallbacks are tried in order when Name is not found, such as
	// "powershell.exe" after "pwsh.exe".
	Fallbacks []string
	// Args are the arguments, each passed to the program as one argument.
	Args []string
	// Env are "KEY=value" pairs set on top of the inherited environment.
	Env []string
	// Timeout bounds the run; when it passes, the process group is killed.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxStdout bounds stdout; a tool that writes more is killed and the
	// run fails with [*OutputTooLargeError]. Zero means DefaultMaxStdout.
	MaxStdout int64
	// MaxStderr bounds the stderr kept. Zero means DefaultMaxStderr.
	MaxStderr int64
}

// Result is what a tool that exited with status 0 wrote.
type Result struct {
	Stdout []byte
	Stderr []byte
}

// Runner runs a Command. The real one is [OS]; tests supply their own.
type Runner interface {
	// Run runs cmd and returns its output when it exits with status 0.
	// Otherwise the error is a [*NotFoundError], [*ExitError],
	// [*TimeoutError], [*OutputTooLargeError], [*StartError], or ctx's
	// error when ctx ended first (the process group is then killed).
	Run(ctx context.Context, cmd Command) (Result, error)
}

// NotFoundError means the tool is not installed: it is not on the search
// path, or the program found there could not find its own interpreter
// (exit status 127, Windows' "is not recognized").
type NotFoundError struct {
	Name string
	// Searched is the search path that was used.
	Searched string
	Err      error
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%q was not found on the search path", e.Name)
}

func (e *NotFoundError) Unwrap() error { return e.Err }

// ExitError means the tool ran and exited with a non-zero status.
type ExitError struct {
	Name   string
	Code   int // -1 when a signal ended it
	Stdout []byte
	Stderr []byte
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited with status %d", e.Name, e.Code)
}

// TimeoutError means the run took longer than its Timeout; the tool and
// every process of its group were killed.
type TimeoutError struct {
	Name    string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s did not finish within %s; it and its child processes were killed", e.Name, e.Timeout)
}

// OutputTooLargeError means the tool wrote more than MaxStdout bytes to
// stdout; it and its process group were killed.
type OutputTooLargeError struct {
	Name  string
	Limit int64
}

func (e *OutputTooLargeError) Error() string {
	return fmt.Sprintf("%s wrote more than %d bytes to stdout; it was stopped", e.Name, e.Limit)
}

// startAttempts is how many times a tool whose executable is busy is
// started before giving up.
const startAttempts = 5

// StartError means the tool was found but could not be started.
type StartError struct {
	Name string
	Path string
	Err  error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("cannot start %s (%s): %s", e.Name, e.Path, e.Err.Error())
}

func (e *StartError) Unwrap() error { return e.Err }

// OS runs tools as processes of the operating system. The zero value
// searches $PATH and inherits the process's environment.
type OS struct {
	// Path, when set, is the search path used instead of $PATH, and the
	// tool's PATH is set to it. Tests point it at a folder of fake tools.
	Path string
	// Environ, when set, is the environment the tool inherits instead of
	// os.Environ().
	Environ []string
	// WaitDelay overrides DefaultWaitDelay.
	WaitDelay time.Duration
}

var _ Runner = OS{}

// Run implements [Runner].
func (o OS) Run(ctx context.Context, c Command) (Result, error) {
	search := o.Path
	if search == "" {
		search = os.Getenv("PATH")
	}
	path, err := lookPath(c, search)
	if err != nil {
		return Result{}, err
	}
	dir, err := workDir()
	if err != nil {
		return Result{}, &StartError{Name: c.Name, Path: path, Err: err}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxOut, maxErr := c.MaxStdout, c.MaxStderr
	if maxOut <= 0 {
		maxOut = DefaultMaxStdout
	}
	if maxErr <= 0 {
		maxErr = DefaultMaxStderr
	}

	runCtx, cancel := context.WithTimeoutCause(ctx, timeout, errTimedOut)
	defer cancel()
	stopCtx, stop := context.WithCancelCause(runCtx)
	defer stop(nil)

	stdout := &limitedBuffer{limit: maxOut, overflow: func() { stop(errTooLarge) }}
	stderr := &limitedBuffer{limit: maxErr}
	var cmd *osexec.Cmd
	for attempt := 1; ; attempt++ {
		cmd = osexec.CommandContext(stopCtx, path, c.Args...)
		cmd.Dir = dir
		cmd.Stdin = nil // the null device
		cmd.Env = o.environ(c.Env)
		setGroup(cmd)
		cmd.Cancel = func() error { return killGroup(cmd) }
		cmd.WaitDelay = o.WaitDelay
		if cmd.WaitDelay <= 0 {
			cmd.WaitDelay = DefaultWaitDelay
		}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		err = cmd.Start()
		// "Text file busy": the executable is open for writing somewhere (a
		// tool being updated, or a fork of this process that has not reached
		// its own exec yet). It passes within moments: try a few times.
		if err == nil || !isTextBusy(err) || attempt == startAttempts {
			break
		}
		select {
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		case <-stopCtx.Done():
		}
	}
	if err != nil {
		if errors.Is(err, osexec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return Result{}, &NotFoundError{Name: c.Name, Searched: search, Err: err}
		}
		if ctxErr := stopCtx.Err(); ctxErr != nil {
			return Result{}, ctxErr
		}
		return Result{}, &StartError{Name: c.Name, Path: path, Err: err}
	}
	err = cmd.Wait()
	waitDelayed := errors.Is(err, osexec.ErrWaitDelay)
	if waitDelayed {
		// The tool exited successfully but something of its group kept
		// stdout open: end the group. What was written is kept.
		_ = killGroup(cmd)
		err = nil
	}
	out, errText := stdout.Bytes(), stderr.Bytes()
	switch cause := context.Cause(stopCtx); {
	case errors.Is(cause, errTooLarge):
		return Result{}, &OutputTooLargeError{Name: c.Name, Limit: maxOut}
	case stopCtx.Err() != nil && err != nil:
		if errors.Is(cause, errTimedOut) {
			return Result{}, &TimeoutError{Name: c.Name, Timeout: timeout}
		}
		return Result{}, cause
	}
	if err != nil {
		code := -1
		var ee *osexec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code == 127 || bytes.Contains(errText, []byte("is not recognized as")) {
			return Result{}, &NotFoundError{Name: c.Name, Searched: search, Err: err}
		}
		return Result{}, &ExitError{Name: c.Name, Code: code, Stdout: out, Stderr: errText}
	}
	return Result{Stdout: out, Stderr: errText}, nil
}

var (
	errTimedOut = errors.New("the tool's timeout passed")
	errTooLarge = errors.New("the tool's output is too large")
)

// lookPath finds c's executable (or a fallback) on search. Entries that are
// empty or relative are skipped, so a tool is never taken from the current
// directory.
func lookPath(c Command, search string) (string, error) {
	var last error = osexec.ErrNotFound
	for _, name := range append([]string{c.Name}, c.Fallbacks...) {
		if name == "" || strings.ContainsAny(name, `/\`) {
			return "", &NotFoundError{Name: c.Name, Searched: search, Err: fmt.Errorf("%q is not a plain program name", name)}
		}
		for _, dir := range filepath.SplitList(search) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue
			}
			p, err := osexec.LookPath(filepath.Join(dir, name))
			if err == nil {
				return p, nil
			}
			last = err
		}
	}
	return "", &NotFoundError{Name: c.Name, Searched: search, Err: last}
}

// environ is the tool's environment: the inherited one with extra set on
// top, and PATH set to o.Path when that is set.
func (o OS) environ(extra []string) []string {
	base := o.Environ
	if base == nil {
		base = os.Environ()
	}
	set := append([]string(nil), extra...)
	if o.Path != "" {
		set = append(set, "PATH="+o.Path)
	}
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !hasKey(set, k) {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

func hasKey(kvs []string, key string) bool {
	for _, kv := range kvs {
		if k, _, _ := strings.Cut(kv, "="); sameKey(k, key) {
			return true
		}
	}
	return false
}

// limitedBuffer keeps up to limit bytes. Past the limit it discards, and
// calls overflow once (the runner then stops the tool) when that is set.
// The writes come from the os/exec copying goroutine; Bytes is read after
// Wait, but the lock keeps the race detector's view simple.
type limitedBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	limit    int64
	overflow func()
	over     bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - int64(b.buf.Len())
	if int64(len(p)) <= room {
		b.buf.Write(p)
		return len(p), nil
	}
	if room > 0 {
		b.buf.Write(p[:room])
	}
	if !b.over && b.overflow != nil {
		b.over = true
		b.overflow()
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
