package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary doubles as the fake tool: a script named "tool" in a
// temporary folder execs it with -test.run=^TestHelperProcess$, and the
// helper acts according to AZCRED_EXEC_HELPER.
const helperEnv = "AZCRED_EXEC_HELPER"

// noRaceExitSleep spares each fake tool the race detector's one-second
// pause at exit.
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

// TestHelperProcess is the fake tool. Run normally it does nothing.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("the fake tool of the other tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(helperMain(mode, args))
}

func helperMain(mode string, args []string) int {
	switch mode {
	case "echo": // print argv, working directory, stdin and environment
		wd, _ := os.Getwd()
		stdin, _ := readAllLimit(os.Stdin, 1024)
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"args": args, "wd": wd, "stdin": stdin, "env": os.Environ()})
		fmt.Fprint(os.Stderr, "a warning on stderr")
		return 0
	case "fail":
		fmt.Fprint(os.Stderr, "ERROR: something failed")
		return 3
	case "missing-interpreter":
		fmt.Fprint(os.Stderr, "/usr/bin/env: 'python3': No such file or directory")
		return 127
	case "not-recognized":
		fmt.Fprint(os.Stderr, "'az' is not recognized as an internal or external command,\r\noperable program or batch file.")
		return 1
	case "sleep":
		time.Sleep(time.Hour)
		return 0
	case "grandchild": // start a sleeping grandchild, record its pid, sleep
		cmd := osexec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"=sleep")
		if err := cmd.Start(); err != nil {
			fmt.Fprint(os.Stderr, err)
			return 2
		}
		if err := os.WriteFile(os.Getenv("AZCRED_PID_FILE"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
			return 2
		}
		time.Sleep(time.Hour)
		return 0
	case "hold-stdout": // answer, leave a grandchild holding stdout, exit 0
		cmd := osexec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"=sleep")
		cmd.Stdout = os.Stdout
		if err := cmd.Start(); err != nil {
			return 2
		}
		_ = os.WriteFile(os.Getenv("AZCRED_PID_FILE"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		fmt.Print(`{"answer":42}`)
		return 0
	case "flood": // 100 MB on stdout
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range 100 {
			if _, err := os.Stdout.Write(chunk); err != nil {
				return 1
			}
		}
		return 0
	}
	return 99
}

func readAllLimit(f *os.File, n int) (string, error) {
	b := make([]byte, n)
	k, err := f.Read(b)
	if k == 0 {
		return "", err
	}
	return string(b[:k]), nil
}

// toolDir makes a folder holding only the fake "tool" and returns it.
func toolDir(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake tool is a shell script")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nexec '%s' -test.run='^TestHelperProcess$' -- \"$@\"\n", exe)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tool"), []byte(script), 0o755))
	return dir
}

func run(t *testing.T, r OS, mode string, c Command) (Result, error) {
	t.Helper()
	if c.Name == "" {
		c.Name = "tool"
	}
	c.Env = append(c.Env, helperEnv+"="+mode, noRaceExitSleep)
	return r.Run(context.Background(), c)
}

func TestRunArgvEnvDirStdin(t *testing.T) {
	t.Parallel()
	dir := toolDir(t)
	weird := []string{"--resource", "https://x/;touch /tmp/pwned", "$(id)", "`id`", "a b", "'q'", `"dq"`, "*", ""}
	res, err := run(t, OS{Path: dir, Environ: []string{"HOME=/home/u", "NO_COLOR=false", "KEEP=1"}}, "echo", Command{
		Args: weird,
		Env:  []string{"NO_COLOR=true", "AZURE_CORE_NO_COLOR=true"},
	})
	require.NoError(t, err)
	var got struct {
		Args  []string
		Wd    string
		Stdin string
		Env   []string
	}
	require.NoError(t, json.Unmarshal(res.Stdout, &got))
	assert.Equal(t, weird, got.Args, "every argument arrives as one, unexpanded")
	assert.Equal(t, "/", got.Wd)
	assert.Empty(t, got.Stdin)
	assert.Contains(t, got.Env, "HOME=/home/u")
	assert.Contains(t, got.Env, "KEEP=1")
	assert.Contains(t, got.Env, "NO_COLOR=true")
	assert.NotContains(t, got.Env, "NO_COLOR=false")
	assert.Contains(t, got.Env, "AZURE_CORE_NO_COLOR=true")
	assert.Contains(t, got.Env, "PATH="+dir, "the tool sees the same search path")
	assert.Equal(t, "a warning on stderr", string(res.Stderr))
}

func TestRunNotFound(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	for name, c := range map[string]struct {
		r    OS
		cmd  Command
		mode string
	}{
		"not on the path":     {OS{Path: empty}, Command{Name: "az"}, "echo"},
		"relative path entry": {OS{Path: "."}, Command{Name: "tool"}, "echo"},
		"a path, not a name":  {OS{Path: empty}, Command{Name: "./tool"}, "echo"},
		"fallbacks missing":   {OS{Path: empty}, Command{Name: "pwsh.exe", Fallbacks: []string{"powershell.exe"}}, "echo"},
		"exit status 127":     {OS{Path: toolDir(t)}, Command{}, "missing-interpreter"},
		"is not recognized":   {OS{Path: toolDir(t)}, Command{}, "not-recognized"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := run(t, c.r, c.mode, c.cmd)
			var nf *NotFoundError
			require.ErrorAs(t, err, &nf)
			assert.Contains(t, err.Error(), "was not found on the search path")
		})
	}
}

func TestRunNotFoundIgnoresCurrentDirectory(t *testing.T) {
	// A tool in the working directory must not be picked up through an
	// empty or "." entry of the search path.
	dir := toolDir(t)
	t.Chdir(dir)
	_, err := run(t, OS{Path: ":.:" + string(os.PathListSeparator)}, "echo", Command{})
	var nf *NotFoundError
	require.ErrorAs(t, err, &nf)
}

func TestRunFallback(t *testing.T) {
	t.Parallel()
	dir := toolDir(t)
	res, err := run(t, OS{Path: dir}, "echo", Command{Name: "pwsh", Fallbacks: []string{"tool"}, Args: []string{"x"}})
	require.NoError(t, err)
	assert.Contains(t, string(res.Stdout), `"args":["x"]`)
}

func TestRunExitError(t *testing.T) {
	t.Parallel()
	_, err := run(t, OS{Path: toolDir(t)}, "fail", Command{})
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.Code)
	assert.Equal(t, "ERROR: something failed", string(ee.Stderr))
	assert.Equal(t, "tool exited with status 3", err.Error())
}

// pidGone reports whether pid has exited: no such process, or a zombie
// waiting for a slow init to reap it.
func pidGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	return pid
}

func TestRunTimeoutKillsTheGroup(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	_, err := run(t, OS{Path: toolDir(t)}, "grandchild", Command{
		Timeout: 500 * time.Millisecond,
		Env:     []string{"AZCRED_PID_FILE=" + pidFile},
	})
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "tool did not finish within 500ms; it and its child processes were killed", err.Error())
	pid := readPid(t, pidFile)
	// SIGKILL reached the grandchild with the tool; the kernel may take a
	// moment to finish it.
	assert.Eventually(t, func() bool { return pidGone(pid) }, 5*time.Second, 10*time.Millisecond, "grandchild %d survived", pid)
}

func TestRunCancelKillsTheGroup(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	dir := toolDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := OS{Path: dir}.Run(ctx, Command{Name: "tool", Env: []string{helperEnv + "=grandchild", "AZCRED_PID_FILE=" + pidFile, noRaceExitSleep}})
		done <- err
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(pidFile); return err == nil }, 10*time.Second, 5*time.Millisecond)
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	pid := readPid(t, pidFile)
	assert.Eventually(t, func() bool { return pidGone(pid) }, 5*time.Second, 10*time.Millisecond, "grandchild %d survived", pid)
}

func TestRunGrandchildHoldingStdout(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	res, err := run(t, OS{Path: toolDir(t), WaitDelay: 100 * time.Millisecond}, "hold-stdout", Command{
		Env: []string{"AZCRED_PID_FILE=" + pidFile},
	})
	require.NoError(t, err, "a tool that answered and exited 0 succeeds")
	assert.JSONEq(t, `{"answer":42}`, string(res.Stdout))
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		pid := readPid(t, pidFile)
		assert.Eventually(t, func() bool { return pidGone(pid) }, 5*time.Second, 10*time.Millisecond, "grandchild %d survived", pid)
	}
}

func TestRunOutputTooLarge(t *testing.T) {
	t.Parallel()
	_, err := run(t, OS{Path: toolDir(t)}, "flood", Command{})
	var tl *OutputTooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, int64(DefaultMaxStdout), tl.Limit)
	assert.Equal(t, "tool wrote more than 1048576 bytes to stdout; it was stopped", err.Error())
}

func TestLimitedBuffer(t *testing.T) {
	t.Parallel()
	calls := 0
	b := &limitedBuffer{limit: 5, overflow: func() { calls++ }}
	for _, s := range []string{"ab", "cd", "efg", "h"} {
		n, err := b.Write([]byte(s))
		require.NoError(t, err)
		assert.Equal(t, len(s), n)
	}
	assert.Equal(t, "abcde", string(b.Bytes()))
	assert.Equal(t, 1, calls)
}

func TestEnviron(t *testing.T) {
	t.Parallel()
	got := OS{Environ: []string{"A=1", "B=2", "PATH=/usr/bin"}, Path: "/fake"}.environ([]string{"B=3"})
	assert.Equal(t, []string{"A=1", "B=3", "PATH=/fake"}, got)
	got = OS{Environ: []string{"A=1"}}.environ(nil)
	assert.Equal(t, []string{"A=1"}, got)
}
