package azcred

import (
	"bufio"
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
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/exec"
)

// The developer-tool tests run fake az, azd and pwsh executables: small
// scripts in a temporary folder (the only folder of the search path the
// runner gets) that exec this test binary with -test.run=^TestFakeDevTool$.
// The fake records its argv and environment in the folder and answers from
// the golden files in testdata/<tool>/, following the folder's "script":
// one case per line, the n-th run taking line n (the last line once the
// script runs out). "!fresh" prints a token valid for an hour in the
// tool's format, and a case ending in "@<duration>" answers after that long.

const (
	fakeToolEnv     = "AZCRED_FAKE_TOOL"
	fakeDirEnv      = "AZCRED_FAKE_DIR"
	fakeTestdataEnv = "AZCRED_FAKE_TESTDATA"
)

// TestFakeDevTool is the fake tool. Run normally it does nothing.
func TestFakeDevTool(t *testing.T) {
	tool := os.Getenv(fakeToolEnv)
	if tool == "" {
		t.Skip("the fake az/azd/pwsh of the developer-tool tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(fakeToolMain(tool, args))
}

// fakeCall is what one run of a fake tool recorded.
type fakeCall struct {
	Tool  string    `json:"tool"`
	Args  []string  `json:"args"`
	Env   []string  `json:"env"`
	Dir   string    `json:"dir"`
	Start time.Time `json:"start"` // when the run began
}

func fakeToolMain(tool string, args []string) int {
	if tool == "sleep" {
		time.Sleep(time.Hour)
		return 0
	}
	dir := os.Getenv(fakeDirEnv)
	wd, _ := os.Getwd()
	rec, _ := json.Marshal(fakeCall{Tool: tool, Args: args, Env: os.Environ(), Dir: wd, Start: time.Now()})
	f, err := os.OpenFile(filepath.Join(dir, "calls.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 90
	}
	_, _ = f.Write(append(rec, '\n'))
	_ = f.Close()
	calls, _ := os.ReadFile(filepath.Join(dir, "calls.jsonl"))
	n := strings.Count(string(calls), "\n")
	script, _ := os.ReadFile(filepath.Join(dir, "script"))
	lines := strings.Fields(string(script))
	if len(lines) == 0 {
		fmt.Fprintln(os.Stderr, "fake: no script")
		return 91
	}
	name := lines[min(n, len(lines))-1]
	// "case@300ms" answers as case does, after 300 ms.
	if c, d, ok := strings.Cut(name, "@"); ok {
		wait, err := time.ParseDuration(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake: bad delay", d)
			return 94
		}
		time.Sleep(wait)
		name = c
	}
	switch name {
	case "!fresh": // a token valid for an hour, in this tool's format
		exp := time.Now().Add(time.Hour)
		var out any
		switch tool {
		case "az":
			out = map[string]any{"accessToken": goldenToken1, "expires_on": exp.Unix(), "tokenType": "Bearer"}
		case "azd":
			out = map[string]any{"token": goldenToken1, "expiresOn": exp.UTC().Format(time.RFC3339)}
		default:
			fmt.Fprintln(os.Stderr, "fake: no fresh answer for", tool)
			return 95
		}
		b, _ := json.Marshal(out)
		_, _ = os.Stdout.Write(b)
		return 0
	case "!hang": // a sleeping grandchild, then sleep past any timeout
		cmd := osexec.Command(os.Args[0], "-test.run=^TestFakeDevTool$")
		cmd.Env = append(os.Environ(), fakeToolEnv+"=sleep")
		if err := cmd.Start(); err != nil {
			return 92
		}
		_ = os.WriteFile(filepath.Join(dir, "grandchild.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		time.Sleep(time.Hour)
		return 0
	case "!flood": // 100 MB on stdout
		chunk := []byte(strings.Repeat("{", 1<<20))
		for range 100 {
			if _, err := os.Stdout.Write(chunk); err != nil {
				return 1
			}
		}
		return 0
	}
	base := filepath.Join(os.Getenv(fakeTestdataEnv), filepath.FromSlash(name))
	found := false
	for _, s := range []struct {
		ext string
		to  *os.File
	}{{".stdout", os.Stdout}, {".stderr", os.Stderr}} {
		if b, err := os.ReadFile(base + s.ext); err == nil {
			found = true
			_, _ = s.to.Write(b)
		}
	}
	if !found {
		fmt.Fprintln(os.Stderr, "fake: no golden file", base)
		return 93
	}
	if b, err := os.ReadFile(base + ".exit"); err == nil {
		code, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return code
	}
	return 0
}

// fakeTools is a folder of fake tools and what they recorded.
type fakeTools struct {
	dir string // records and script
	bin string // the search path: only the fakes
}

// newFakeTools makes fake az, azd and pwsh that follow script.
func newFakeTools(t testing.TB, script ...string) *fakeTools {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake tools are shell scripts")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	testdata, err := filepath.Abs("testdata")
	require.NoError(t, err)
	f := &fakeTools{dir: t.TempDir()}
	f.bin = filepath.Join(f.dir, "bin")
	require.NoError(t, os.Mkdir(f.bin, 0o700))
	for _, tool := range []string{"az", "azd", "pwsh"} {
		s := fmt.Sprintf("#!/bin/sh\n%s=%s %s='%s' %s='%s' GORACE=atexit_sleep_ms=0 exec '%s' -test.run='^TestFakeDevTool$' -- \"$@\"\n",
			fakeToolEnv, tool, fakeDirEnv, f.dir, fakeTestdataEnv, testdata, exe)
		require.NoError(t, os.WriteFile(filepath.Join(f.bin, tool), []byte(s), 0o700))
	}
	f.setScript(t, script...)
	return f
}

func (f *fakeTools) setScript(t testing.TB, lines ...string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "script"), []byte(strings.Join(lines, "\n")), 0o600))
}

// calls returns the runs recorded so far.
func (f *fakeTools) calls(t testing.TB) []fakeCall {
	t.Helper()
	file, err := os.Open(filepath.Join(f.dir, "calls.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	defer file.Close()
	var out []fakeCall
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c fakeCall
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		out = append(out, c)
	}
	require.NoError(t, sc.Err())
	return out
}

// seams point a credential at the fakes, with an empty environment for the
// tenant rule.
func (f *fakeTools) seams() devToolSeams {
	return devToolSeams{runner: exec.OS{Path: f.bin}, getenv: envMap()}
}

// Golden tokens.
const (
	goldenToken1 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tIiwiZmFrZSI6MX0.fake-signature-1"
	goldenToken2 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tIiwiZmFrZSI6MX0.fake-signature-2"
)

var (
	goldenExpiry      = time.Date(2023, 2, 14, 15, 4, 5, 0, time.UTC) // "success" cases
	goldenExpiryLater = goldenExpiry.Add(time.Hour)                   // "-later" cases
)

// recordingRunner is an in-process Runner that records commands and answers
// with answer.
type recordingRunner struct {
	mu     sync.Mutex
	cmds   []exec.Command
	answer func(exec.Command) (exec.Result, error)
}

func (r *recordingRunner) Run(_ context.Context, c exec.Command) (exec.Result, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, c)
	r.mu.Unlock()
	return r.answer(c)
}

func (r *recordingRunner) commands() []exec.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exec.Command(nil), r.cmds...)
}

// answerFile answers with testdata/<name>.stdout.
func answerFile(t testing.TB, name string) func(exec.Command) (exec.Result, error) {
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)+".stdout"))
	require.NoError(t, err)
	return func(exec.Command) (exec.Result, error) { return exec.Result{Stdout: b}, nil }
}

func TestValidateToolScope(t *testing.T) {
	t.Parallel()
	for scope, bad := range map[string]string{
		"https://management.azure.com/.default":    "",
		"api://a-b_c.d/user:read":                  "",
		"https://x/.default;touch /tmp/pwned":      "';'",
		"https://x/.default && id":                 "' '",
		"https://x/$(id)":                          "'$'",
		"https://x/`id`":                           "'`'",
		"https://x/.default|sh":                    "'|'",
		"https://x/'q'":                            `'\''`,
		`https://x/"q"`:                            `'"'`,
		"https://x/\n":                             `'\n'`,
		"https://x/%0a":                            "'%'",
		"https://x/ä":                              "'ä'",
		"https://management.azure.com/.default&x=": "'&'",
	} {
		err := validateToolScope("Cred", scope)
		if bad == "" {
			assert.NoError(t, err, scope)
			continue
		}
		require.Error(t, err, scope)
		assert.Contains(t, err.Error(), "contains "+bad+", which is not allowed", scope)
		assert.True(t, strings.HasPrefix(err.Error(), "Cred: "))
	}
	assert.ErrorContains(t, validateToolScope("Cred", ""), "a scope is empty")
	assert.ErrorContains(t, validateToolScope("Cred", "-o"), `Cred: the scope "-o" starts with '-'`, "a tool would read it as an option")
}

func TestValidateSubscription(t *testing.T) {
	t.Parallel()
	for sub, bad := range map[string]string{
		"00000000-1111-2222-3333-444444444444": "",
		"My Sub_1.prod":                        "",
		"sub\";id":                             `'"'`,
		"sub$(id)":                             "'$'",
		"sub'":                                 `'\''`,
	} {
		err := validateSubscription("Cred", sub)
		if bad == "" {
			assert.NoError(t, err, sub)
			continue
		}
		assert.ErrorContains(t, err, "contains "+bad+", which is not allowed", sub)
	}
}

// A request must name one plain scope and tenant: shell metacharacters
// are refused before any tool runs, for every credential.
func TestDevToolsRefuseMetacharacters(t *testing.T) {
	t.Parallel()
	for _, mk := range devToolMakers() {
		t.Run(mk.name, func(t *testing.T) {
			t.Parallel()
			r := &recordingRunner{answer: func(exec.Command) (exec.Result, error) { return exec.Result{}, errors.New("must not run") }}
			cred, err := mk.make(devToolSeams{runner: r, getenv: envMap()}, false)
			require.NoError(t, err)
			for _, opts := range []TokenRequestOptions{
				{Scopes: []string{"https://x/.default;touch /tmp/pwned"}},
				{Scopes: []string{"https://x/$(id)"}},
				{Scopes: []string{armScope}, TenantID: "t;id"},
				{Scopes: []string{armScope}, TenantID: "t' -Command 'id"},
			} {
				_, err := cred.GetToken(context.Background(), opts)
				require.Error(t, err)
				assert.Contains(t, err.Error(), "contains")
				assert.False(t, isUnavailable(err))
			}
			assert.Empty(t, r.commands(), "no tool ran")
			_, err = mk.make(devToolSeams{runner: r, getenv: envMap()}, false, "bad;tenant")
			assert.ErrorContains(t, err, "contains ';'")
		})
	}
}

// Even a runner that skipped validation could not reach a shell: each
// argument arrives as one argument, unexpanded.
func TestDevToolsArgumentsNeverReachAShell(t *testing.T) {
	t.Parallel()
	f := newFakeTools(t, "azurecli/success-2.54")
	marker := filepath.Join(f.dir, "pwned")
	evil := "https://x/;touch " + marker + ";$(touch " + marker + ")`touch " + marker + "`"
	args := azureCLIArgs(evil, "t&&touch "+marker, "")
	_, err := exec.OS{Path: f.bin}.Run(context.Background(), exec.Command{Name: "az", Args: args})
	require.NoError(t, err)
	calls := f.calls(t)
	require.Len(t, calls, 1)
	assert.Equal(t, args, calls[0].Args)
	assert.NoFileExists(t, marker)
}

// devToolMaker builds one of the three credentials for table tests.
type devToolMaker struct {
	name  string
	tool  string // the fake's name
	dir   string // its testdata folder
	make  func(s devToolSeams, disableCache bool, tenant ...string) (TokenCredential, error)
	inner func(TokenCredential) *devTool
}

func devToolMakers() []devToolMaker {
	tenantOf := func(t []string) string {
		if len(t) > 0 {
			return t[0]
		}
		return ""
	}
	return []devToolMaker{
		{credNameAzureCLI, "az", "azurecli", func(s devToolSeams, dc bool, t ...string) (TokenCredential, error) {
			return NewAzureCLICredential(&AzureCLICredentialOptions{TenantID: tenantOf(t), DisableCache: dc, devToolSeams: s, location: time.UTC})
		}, func(c TokenCredential) *devTool { return c.(*AzureCLICredential).tool }},
		{credNameAzureDeveloperCLI, "azd", "azd", func(s devToolSeams, dc bool, t ...string) (TokenCredential, error) {
			return NewAzureDeveloperCLICredential(&AzureDeveloperCLICredentialOptions{TenantID: tenantOf(t), DisableCache: dc, devToolSeams: s})
		}, func(c TokenCredential) *devTool { return c.(*AzureDeveloperCLICredential).tool }},
		{credNameAzurePowerShell, "pwsh", "azurepowershell", func(s devToolSeams, dc bool, t ...string) (TokenCredential, error) {
			return NewAzurePowerShellCredential(&AzurePowerShellCredentialOptions{TenantID: tenantOf(t), DisableCache: dc, devToolSeams: s})
		}, func(c TokenCredential) *devTool { return c.(*AzurePowerShellCredential).tool }},
	}
}

// successCase is each tool's golden success answer (expiring at
// goldenExpiry with goldenToken1) and the later one.
func successCase(dir string) (string, string) {
	if dir == "azurecli" {
		return "azurecli/success-2.54", "azurecli/success-2.54-later"
	}
	return dir + "/success", dir + "/success-later"
}

func TestDevToolsSuccessThroughTheFakes(t *testing.T) {
	t.Parallel()
	for _, mk := range devToolMakers() {
		t.Run(mk.name, func(t *testing.T) {
			t.Parallel()
			ok, _ := successCase(mk.dir)
			f := newFakeTools(t, ok)
			cred, err := mk.make(f.seams(), false)
			require.NoError(t, err)
			tok, err := cred.GetToken(context.Background(), armRequest)
			require.NoError(t, err)
			assert.Equal(t, goldenToken1, tok.Token)
			assert.Equal(t, goldenExpiry, tok.ExpiresOn)
			calls := f.calls(t)
			require.Len(t, calls, 1)
			assert.Equal(t, mk.tool, calls[0].Tool)
			assert.Equal(t, "/", calls[0].Dir)
			assert.Contains(t, calls[0].Env, "PATH="+f.bin)
			assert.Contains(t, calls[0].Env, "AZURE_CORE_NO_COLOR=true")
			assert.Contains(t, calls[0].Env, "NO_COLOR=true")
		})
	}
}

func TestDevToolsNotInstalled(t *testing.T) {
	t.Parallel()
	for _, mk := range devToolMakers() {
		t.Run(mk.name, func(t *testing.T) {
			t.Parallel()
			// A search path holding one empty folder: a real tool installed
			// on the machine is not found.
			cred, err := mk.make(devToolSeams{runner: exec.OS{Path: t.TempDir()}, getenv: envMap()}, false)
			require.NoError(t, err)
			_, err = cred.GetToken(context.Background(), armRequest)
			var u *CredentialUnavailableError
			require.ErrorAs(t, err, &u)
			assert.Contains(t, err.Error(), "is not installed or not on the search path; install ")
			assert.True(t, strings.HasPrefix(err.Error(), mk.name+": "))
		})
	}
}

// The 127 exit status of a tool whose wrapper lost its interpreter means
// "not installed" too.
func TestDevToolsBrokenInstall(t *testing.T) {
	t.Parallel()
	f := newFakeTools(t, "azurecli/broken-install")
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: f.seams()})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	var u *CredentialUnavailableError
	require.ErrorAs(t, err, &u)
	assert.Equal(t, "AzureCLICredential: the Azure CLI (az) is not installed or not on the search path; install it (https://aka.ms/azure-cli) and run `az login`", err.Error())
}

// 1,000 concurrent callers share one process; 100 sequential calls in the
// fresh window start none; after it, one more (two when the tool first
// hands back the token it holds, as az does before its own renewal point).
func TestDevToolsOneProcessPerTokenLifetime(t *testing.T) {
	t.Parallel()
	for _, mk := range devToolMakers() {
		t.Run(mk.name, func(t *testing.T) {
			t.Parallel()
			ok, later := successCase(mk.dir)
			for _, tc := range []struct {
				name   string
				script []string
				after  int // processes after the fresh window
			}{
				{"new token at refresh", []string{ok, later}, 1},
				{"same token first", []string{ok, ok, later}, 2},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					f := newFakeTools(t, tc.script...)
					clk := clock.NewFake(goldenExpiry.Add(-time.Hour))
					s := f.seams()
					s.clock = clk
					cred, err := mk.make(s, false)
					require.NoError(t, err)
					engine := mk.inner(cred).engine

					const callers = 1000
					var wg sync.WaitGroup
					errs := make(chan error, callers)
					start := make(chan struct{})
					for range callers {
						wg.Go(func() {
							<-start
							tok, err := cred.GetToken(context.Background(), armRequest)
							if err == nil && tok.Token != goldenToken1 {
								err = fmt.Errorf("got another token")
							}
							errs <- err
						})
					}
					close(start)
					wg.Wait()
					close(errs)
					for err := range errs {
						require.NoError(t, err)
					}
					assert.Len(t, f.calls(t), 1, "1,000 concurrent callers")

					for range 100 {
						clk.Advance(10 * time.Second)
						_, err := cred.GetToken(context.Background(), armRequest)
						require.NoError(t, err)
					}
					assert.Len(t, f.calls(t), 1, "100 sequential calls in the fresh window")

					// Past the refresh time (expiry - 5 min, minus jitter):
					// the held token is served while one refresh runs.
					clk.Set(goldenExpiry.Add(-time.Minute))
					tok, err := cred.GetToken(context.Background(), armRequest)
					require.NoError(t, err)
					assert.Equal(t, goldenToken1, tok.Token, "stale callers never wait")
					engine.Wait()
					if tc.after == 2 {
						// The tool gave its held token again: the credential
						// keeps it and asks again 30 s later, not before.
						_, err = cred.GetToken(context.Background(), armRequest)
						require.NoError(t, err)
						engine.Wait()
						assert.Len(t, f.calls(t), 2)
						clk.Advance(29 * time.Second)
						_, err = cred.GetToken(context.Background(), armRequest)
						require.NoError(t, err)
						engine.Wait()
						assert.Len(t, f.calls(t), 2)
						clk.Advance(time.Second)
						_, err = cred.GetToken(context.Background(), armRequest)
						require.NoError(t, err)
						engine.Wait()
					}
					assert.Len(t, f.calls(t), 1+tc.after)
					tok, err = cred.GetToken(context.Background(), armRequest)
					require.NoError(t, err)
					assert.Equal(t, goldenToken2, tok.Token)
					assert.Equal(t, goldenExpiryLater, tok.ExpiresOn)
					assert.Len(t, f.calls(t), 1+tc.after)
				})
			}
		})
	}
}

func TestDevToolsDisableCache(t *testing.T) {
	t.Parallel()
	r := &recordingRunner{answer: answerFile(t, "azurecli/success-2.54")}
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{DisableCache: true, devToolSeams: devToolSeams{runner: r, getenv: envMap(), clock: clock.NewFake(goldenExpiry.Add(-time.Hour))}})
	require.NoError(t, err)
	for range 3 {
		_, err := cred.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
	}
	assert.Len(t, r.commands(), 3)
	assert.Nil(t, cred.tool.engine)
}

// A caller that stops waiting does not stop the run others share.
func TestDevToolsCallerDeadlineDoesNotKillSharedRun(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	r := &recordingRunner{answer: func(c exec.Command) (exec.Result, error) {
		close(started)
		<-release
		return answerFile(t, "azurecli/success-2.54")(c)
	}}
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: devToolSeams{runner: r, getenv: envMap(), clock: clock.NewFake(goldenExpiry.Add(-time.Hour))}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := cred.GetToken(ctx, armRequest); first <- err }()
	<-started
	cancel()
	assert.ErrorIs(t, <-first, context.Canceled)
	close(release)
	cred.tool.engine.Wait()
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, goldenToken1, tok.Token)
	assert.Len(t, r.commands(), 1, "the cancelled caller's run was kept")
}

func TestDevToolsTimeoutKillsTheToolAndItsChildren(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	f := newFakeTools(t, "!hang")
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{Timeout: 300 * time.Millisecond, devToolSeams: f.seams()})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Equal(t, "AzureCLICredential: the Azure CLI did not answer within 300ms, so it and its child processes were killed; run the tool's command in a terminal to see why, or raise the Timeout option", err.Error())
	b, err := os.ReadFile(filepath.Join(f.dir, "grandchild.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return processGone(pid) }, 5*time.Second, 10*time.Millisecond, "grandchild %d survived", pid)
}

// processGone reports whether pid has exited: no such process, or a zombie
// that a slow init has not reaped yet (state Z in /proc/<pid>/stat).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestDevToolsOutputTooLarge(t *testing.T) {
	t.Parallel()
	f := newFakeTools(t, "!flood")
	cred, err := NewAzureDeveloperCLICredential(&AzureDeveloperCLICredentialOptions{devToolSeams: f.seams()})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Equal(t, "AzureDeveloperCLICredential: the Azure Developer CLI wrote more than 1048576 bytes to stdout, which is not a token answer, so it was stopped; check that the tool on the search path is the real one", err.Error())
}

// Chain mode: every failure of the tool is unavailable, with its message.
func TestDevToolsChainMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, golden string
		make         func(devToolSeams) (TokenCredential, error)
		claims       string
	}{
		{"az AADSTS", "azurecli/aadsts", func(s devToolSeams) (TokenCredential, error) {
			return NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: s})
		}, ""},
		{"az claims", "azurecli/success-2.54", func(s devToolSeams) (TokenCredential, error) {
			return NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: s})
		}, `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`},
		{"azd AADSTS", "azd/aadsts", func(s devToolSeams) (TokenCredential, error) {
			return NewAzureDeveloperCLICredential(&AzureDeveloperCLICredentialOptions{devToolSeams: s})
		}, ""},
		{"pwsh AADSTS", "azurepowershell/aadsts", func(s devToolSeams) (TokenCredential, error) {
			return NewAzurePowerShellCredential(&AzurePowerShellCredentialOptions{devToolSeams: s})
		}, ""},
		{"az not JSON", "azurecli/not-json", func(s devToolSeams) (TokenCredential, error) {
			return NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: s})
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTools(t, tc.golden)
			opts := armRequest
			opts.Claims = tc.claims
			standalone, err := tc.make(f.seams())
			require.NoError(t, err)
			_, failed := standalone.GetToken(context.Background(), opts)
			var af *AuthenticationFailedError
			require.ErrorAs(t, failed, &af)

			s := f.seams()
			s.inChain = true
			inChain, err := tc.make(s)
			require.NoError(t, err)
			_, err = inChain.GetToken(context.Background(), opts)
			var u *CredentialUnavailableError
			require.ErrorAs(t, err, &u)
			assert.False(t, errors.As(err, &af), "no failure is left inside")
			assert.Equal(t, failed.Error(), err.Error(), "the tool's message is kept")

			// Validation errors are the caller's, in a chain too.
			_, err = inChain.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"a b"}})
			assert.False(t, isUnavailable(err))
		})
	}
}

func TestDevToolsTenantRule(t *testing.T) {
	t.Parallel()
	r := &recordingRunner{answer: answerFile(t, "azurecli/success-2.54")}
	s := devToolSeams{runner: r, getenv: envMap("AZURE_ADDITIONALLY_ALLOWED_TENANTS", "other.example"), clock: clock.NewFake(goldenExpiry.Add(-time.Hour))}
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{TenantID: testTenant, devToolSeams: s})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: "third.example"})
	assert.ErrorContains(t, err, `AzureCLICredential is not configured to get tokens for tenant "third.example": add it to the AdditionallyAllowedTenants option`)
	_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: "other.example"})
	require.NoError(t, err)
	cmds := r.commands()
	require.Len(t, cmds, 1)
	assert.Equal(t, []string{"account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com", "--tenant", "other.example"}, cmds[0].Args)
}

func TestDevToolsPrintWithoutTokens(t *testing.T) {
	t.Parallel()
	for _, mk := range devToolMakers() {
		cred, err := mk.make(devToolSeams{getenv: envMap()}, false, testTenant)
		require.NoError(t, err)
		for _, s := range []string{fmt.Sprint(cred), fmt.Sprintf("%#v", cred), fmt.Sprintf("%+v", cred)} {
			assert.Contains(t, s, mk.name+"{tenantID: "+testTenant)
			assert.Contains(t, s, "timeout: 10s")
		}
	}
}

func TestToolText(t *testing.T) {
	t.Parallel()
	got := toolText([]byte("\x1b[31mERROR: bad token "+goldenToken1+"\x1b[0m\r\n"), nil)
	assert.Equal(t, "ERROR: bad token REDACTED", got)
	long := toolText([]byte(strings.Repeat("é", 5000)), nil)
	assert.LessOrEqual(t, len(long), maxToolText)
	assert.True(t, utf8.ValidString(long), "cut on a rune boundary")
}

func TestDevToolTimeoutOption(t *testing.T) {
	t.Parallel()
	_, err := NewAzureCLICredential(&AzureCLICredentialOptions{Timeout: -time.Second})
	assert.ErrorContains(t, err, "the Timeout option is negative")
	r := &recordingRunner{answer: answerFile(t, "azurecli/success-2.54")}
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{Timeout: 3 * time.Second, devToolSeams: devToolSeams{runner: r, getenv: envMap()}})
	require.NoError(t, err)
	_, _ = cred.GetToken(context.Background(), armRequest)
	require.Len(t, r.commands(), 1)
	assert.Equal(t, 3*time.Second, r.commands()[0].Timeout)
}

// BenchmarkAzureCLICachedGetToken is the cached path: no process.
func BenchmarkAzureCLICachedGetToken(b *testing.B) {
	r := &recordingRunner{answer: func(exec.Command) (exec.Result, error) {
		return exec.Result{Stdout: fmt.Appendf(nil, `{"accessToken":"t","expires_on":%d}`, time.Now().Add(time.Hour).Unix())}, nil
	}}
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: devToolSeams{runner: r, getenv: envMap()}})
	require.NoError(b, err)
	ctx := context.Background()
	_, err = cred.GetToken(ctx, armRequest)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cred.GetToken(ctx, armRequest); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(r.commands()); n != 1 {
		b.Fatalf("%d runs, want 1", n)
	}
}

// BenchmarkAzureCLIProcessGetToken is the process path: every call runs the
// fake az (a shell script that execs this test binary), as other libraries
// do for every GetToken.
func BenchmarkAzureCLIProcessGetToken(b *testing.B) {
	f := newFakeTools(b, "azurecli/success-2.54")
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{DisableCache: true, devToolSeams: f.seams()})
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cred.GetToken(ctx, armRequest); err != nil {
			b.Fatal(err)
		}
	}
}

// A tool that prints its token and then exits non-zero with nothing on
// stderr: the error never quotes stdout.
func TestDevToolsNeverQuoteStdout(t *testing.T) {
	t.Parallel()
	const opaque = "EwBwA8l6BAAUopaque-token-value"
	for _, m := range devToolMakers() {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			r := &recordingRunner{answer: func(c exec.Command) (exec.Result, error) {
				return exec.Result{}, &exec.ExitError{Name: c.Name, Code: 1, Stdout: []byte(`{"Token":"` + opaque + `","accessToken":"` + opaque + `"}`)}
			}}
			cred, err := m.make(devToolSeams{runner: r, getenv: envMap()}, false)
			require.NoError(t, err)
			_, err = cred.GetToken(context.Background(), armRequest)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), opaque)
			assert.Contains(t, err.Error(), "exited with status 1")
		})
	}
}
