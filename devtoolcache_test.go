package azcred

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/exec"
)

// The persistent cache of the developer tools, tested with the fake tools
// of devtools_test.go answering fresh tokens, sign-in folders in temporary
// folders, and a store in a temporary folder whose key is kept in a file (so
// that several processes share it, as they share the kernel keyring).

// fileKeyStore keeps the store's key in a file.
type fileKeyStore struct{ path string }

func (k fileKeyStore) Key(string) ([]byte, error) {
	key := make([]byte, cache.KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(k.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = f.Write(key)
		return key, errors.Join(err, f.Close())
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return os.ReadFile(k.path)
}

// noKeyStore is a machine without a key store (keyctl blocked by seccomp).
type noKeyStoreHere struct{}

func (noKeyStoreHere) Key(string) ([]byte, error) {
	return nil, fmt.Errorf("%w: keyctl blocked (test)", cache.ErrKeyStoreUnavailable)
}

// storeIn opens the tools' store in dir with ks.
func storeIn(dir string, ks cache.KeyStore) toolStoreOpener {
	return func(logger *slog.Logger) (cache.Store, error) {
		return openToolStore(dir, ks, logger)
	}
}

// records collects log records.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// above returns the messages of records above level.
func (r *records) above(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Level > level {
			out = append(out, rec.Message)
		}
	}
	return out
}

// count returns how many records at level contain text.
func (r *records) count(level slog.Level, text string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Level == level && strings.Contains(rec.Message, text) {
			n++
		}
	}
	return n
}

// toolLab is a laptop for the persistent cache: fake tools that answer
// tokens fresh-1, fresh-2, ... (one per run, in order, as scripted: az's
// answers are named fresh-N, azd's azd-N and PowerShell's pwsh-N), a home
// folder with an Azure CLI sign-in, and a store folder.
type toolLab struct {
	*fakeTools
	home, azDir, store string
	keys               cache.KeyStore
}

func newToolLab(t testing.TB, script ...string) *toolLab {
	t.Helper()
	f := newFakeTools(t, script...)
	answers := t.TempDir()
	exp := time.Now().Add(time.Hour).Unix()
	for i := 1; i <= 9; i++ {
		for name, out := range map[string]string{
			"fresh": fmt.Sprintf(`{"accessToken":"fresh-%d","expires_on":%d,"tokenType":"Bearer"}`, i, exp),
			"azd":   fmt.Sprintf(`{"token":"fresh-%d","expiresOn":%q}`, i, time.Unix(exp, 0).UTC().Format(time.RFC3339)),
			"pwsh":  fmt.Sprintf(`{"Token":"fresh-%d","ExpiresOn":%d}`, i, exp),
		} {
			require.NoError(t, os.WriteFile(filepath.Join(answers, fmt.Sprintf("%s-%d.stdout", name, i)), []byte(out), 0o600))
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(answers, "not-logged-in.stderr"), []byte("ERROR: Please run 'az login' to setup account.\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(answers, "not-logged-in.exit"), []byte("1\n"), 0o600))
	// The fakes answer from this folder instead of testdata/.
	for _, tool := range []string{"az", "azd", "pwsh"} {
		p := filepath.Join(f.bin, tool)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		abs, err := filepath.Abs("testdata")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "'"+abs+"'", "'"+answers+"'")), 0o700))
	}
	l := &toolLab{fakeTools: f, home: t.TempDir(), store: t.TempDir()}
	l.keys = fileKeyStore{filepath.Join(l.store, "key")}
	l.azDir = filepath.Join(l.home, ".azure")
	require.NoError(t, os.Mkdir(l.azDir, 0o700))
	l.signIn(t, l.azDir, "alice@contoso.com", "tenant-a", "sub-1")
	return l
}

// signIn writes the Azure CLI's files as `az login` leaves them: the
// profile and MSAL's cache for user in tenant, subscription sub the default.
func (l *toolLab) signIn(t testing.TB, dir, user, tenant, sub string) {
	t.Helper()
	profile := map[string]any{"installationId": "i", "subscriptions": []map[string]any{
		{"id": sub, "isDefault": true, "tenantId": tenant, "user": map[string]string{"name": user, "type": "user"}, "state": "Enabled"},
		{"id": "sub-other", "isDefault": false, "tenantId": tenant, "user": map[string]string{"name": user, "type": "user"}, "state": "Enabled"},
	}}
	writeJSON(t, filepath.Join(dir, "azureProfile.json"), profile)
	l.msal(t, dir, user, "at-1")
}

// msal writes MSAL's token cache for user, with one access token.
func (l *toolLab) msal(t testing.TB, dir, user, accessToken string) {
	t.Helper()
	account := "uid." + user + "-login.microsoftonline.com-organizations"
	doc := map[string]any{
		"Account":      map[string]any{account: map[string]string{"username": user}},
		"RefreshToken": map[string]any{account + "-refreshtoken-04b07795--": map[string]string{"secret": "rt"}},
		"AccessToken":  map[string]any{account + "-accesstoken-" + accessToken: map[string]string{"secret": accessToken}},
		"AppMetadata":  map[string]any{"appmetadata-login.microsoftonline.com-04b07795": map[string]string{"client_id": "04b07795"}},
	}
	if user == "" {
		doc = map[string]any{"Account": map[string]any{}, "RefreshToken": map[string]any{}, "AccessToken": map[string]any{}}
	}
	writeJSON(t, filepath.Join(dir, "msal_token_cache.json"), doc)
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// seams are a new process's: the fakes, this laptop's environment (kv on
// top) and the store.
func (l *toolLab) seams(kv ...string) devToolSeams {
	s := l.fakeTools.seams()
	s.getenv = envMap(append([]string{"HOME", l.home, "USERPROFILE", l.home}, kv...)...)
	s.toolStore = storeIn(l.store, l.keys)
	return s
}

// process is a new program asking for an ARM token with a new
// AzureCLICredential; it returns the token (or the error) and the note
// Diagnose would show.
func (l *toolLab) process(t *testing.T, o *AzureCLICredentialOptions) (string, string, error) {
	t.Helper()
	if o == nil {
		o = &AzureCLICredentialOptions{}
	}
	if o.devToolSeams.runner == nil {
		o.devToolSeams = l.seams()
	}
	c, err := NewAzureCLICredential(o)
	require.NoError(t, err)
	ctx, from := withOrigin(context.Background())
	tok, err := c.GetToken(ctx, TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	return tok.Token, from.get(), err
}

func (l *toolLab) runs(t *testing.T) int { return len(l.calls(t)) }

func TestToolCacheSecondProcess(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1", "fresh-2")
	tok, note, err := l.process(t, nil)
	require.NoError(t, err)
	assert.Equal(t, "fresh-1", tok)
	assert.Empty(t, note, "the first process ran az")
	assert.Equal(t, 1, l.runs(t))

	tok, note, err = l.process(t, nil)
	require.NoError(t, err)
	assert.Equal(t, "fresh-1", tok, "the second process gets the first one's token")
	assert.Equal(t, 1, l.runs(t), "without running az")
	assert.Contains(t, note, "token from the persistent cache (az sign-in unchanged since ")

	// az renewing its own access token rewrites MSAL's cache: no change of
	// sign-in, the entry stays good.
	l.msal(t, l.azDir, "alice@contoso.com", "at-2")
	tok, _, err = l.process(t, nil)
	require.NoError(t, err)
	assert.Equal(t, "fresh-1", tok)
	assert.Equal(t, 1, l.runs(t))

	// The file is encrypted: no token in it.
	b, err := os.ReadFile(filepath.Join(l.store, toolStoreName))
	require.NoError(t, err)
	assert.NotContains(t, string(b), "fresh-1")
}

func TestToolCacheInvalidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, l *toolLab) []string // returns extra environment
		script []string
		want   string // "" when az must fail
	}{
		{name: "az login as another user", want: "fresh-2", change: func(t *testing.T, l *toolLab) []string {
			l.signIn(t, l.azDir, "bob@fabrikam.com", "tenant-b", "sub-9")
			return nil
		}},
		{name: "az login again, same user, MSAL cache now holds a second account", want: "fresh-2", change: func(t *testing.T, l *toolLab) []string {
			l.msal(t, l.azDir, "carol@contoso.com", "at-1")
			return nil
		}},
		{name: "az logout", script: []string{"fresh-1", "not-logged-in"}, change: func(t *testing.T, l *toolLab) []string {
			writeJSON(t, filepath.Join(l.azDir, "azureProfile.json"), map[string]any{"installationId": "i", "subscriptions": []any{}})
			l.msal(t, l.azDir, "", "")
			return nil
		}},
		{name: "az account set", want: "fresh-2", change: func(t *testing.T, l *toolLab) []string {
			var p map[string]any
			b, err := os.ReadFile(filepath.Join(l.azDir, "azureProfile.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &p))
			subs := p["subscriptions"].([]any)
			subs[0].(map[string]any)["isDefault"], subs[1].(map[string]any)["isDefault"] = false, true
			writeJSON(t, filepath.Join(l.azDir, "azureProfile.json"), p)
			return nil
		}},
		{name: "tenant switch", want: "fresh-2", change: func(t *testing.T, l *toolLab) []string {
			writeJSON(t, filepath.Join(l.azDir, "azureProfile.json"), map[string]any{"installationId": "i", "subscriptions": []map[string]any{
				{"id": "sub-1", "isDefault": true, "tenantId": "tenant-other", "user": map[string]string{"name": "alice@contoso.com", "type": "user"}}}})
			return nil
		}},
		{name: "another AZURE_CONFIG_DIR with the same files", want: "fresh-2", change: func(t *testing.T, l *toolLab) []string {
			other := t.TempDir()
			for _, name := range []string{"azureProfile.json", "msal_token_cache.json"} {
				b, err := os.ReadFile(filepath.Join(l.azDir, name))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(other, name), b, 0o600))
			}
			return []string{env.AzureConfigDir, other}
		}},
		{name: "az cloud set", want: "fresh-2", change: func(t *testing.T, l *toolLab) []string {
			require.NoError(t, os.WriteFile(filepath.Join(l.azDir, "clouds.config"), []byte("[AzureCloud]\n"), 0o600))
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			script := tc.script
			if script == nil {
				script = []string{"fresh-1", "fresh-2"}
			}
			l := newToolLab(t, script...)
			tok, _, err := l.process(t, nil)
			require.NoError(t, err)
			require.Equal(t, "fresh-1", tok)
			extra := tc.change(t, l)
			o := &AzureCLICredentialOptions{devToolSeams: l.seams(extra...)}
			tok, note, err := l.process(t, o)
			assert.Equal(t, 2, l.runs(t), "the next process runs az again")
			assert.Empty(t, note)
			if tc.want == "" {
				require.Error(t, err, "signed out: no token, not the old one")
				assert.ErrorContains(t, err, "az login")
				assert.Empty(t, tok)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, tok, "and gets the new sign-in's token")
			// ... which the process after it gets from the cache.
			tok, _, err = l.process(t, &AzureCLICredentialOptions{devToolSeams: l.seams(extra...)})
			require.NoError(t, err)
			assert.Equal(t, tc.want, tok)
			assert.Equal(t, 2, l.runs(t))
		})
	}
}

func TestToolCacheKey(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1", "fresh-2", "fresh-3", "fresh-4")
	_, _, err := l.process(t, nil)
	require.NoError(t, err)
	// Another subscription, another tenant: other entries.
	tok, _, err := l.process(t, &AzureCLICredentialOptions{Subscription: "sub-other", devToolSeams: l.seams()})
	require.NoError(t, err)
	assert.Equal(t, "fresh-2", tok)
	tok, _, err = l.process(t, &AzureCLICredentialOptions{TenantID: "00000000-0000-0000-0000-000000000001", devToolSeams: l.seams()})
	require.NoError(t, err)
	assert.Equal(t, "fresh-3", tok)
	// Another scope: another entry.
	c, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: l.seams()})
	require.NoError(t, err)
	got, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	require.NoError(t, err)
	assert.Equal(t, "fresh-4", got.Token)
	// A different az executable (another installation, a test's fake):
	// nothing shared.
	other := newToolLab(t, "fresh-5")
	s := other.fakeTools.seams()
	s.getenv, s.toolStore = l.seams().getenv, l.seams().toolStore
	tok, _, err = l.process(t, &AzureCLICredentialOptions{devToolSeams: s})
	require.NoError(t, err)
	assert.Equal(t, "fresh-5", tok, "the other az ran")
	assert.Len(t, other.calls(t), 1)
	assert.Equal(t, 4, l.runs(t))
}

func TestToolCacheOff(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]func(l *toolLab) *AzureCLICredentialOptions{
		"DisablePersistentCache": func(l *toolLab) *AzureCLICredentialOptions {
			return &AzureCLICredentialOptions{DisablePersistentCache: true, devToolSeams: l.seams()}
		},
		"AZCRED_DISABLE_TOOL_TOKEN_CACHE": func(l *toolLab) *AzureCLICredentialOptions {
			return &AzureCLICredentialOptions{devToolSeams: l.seams(EnvDisableToolTokenCache, "true")}
		},
		"DisableCache": func(l *toolLab) *AzureCLICredentialOptions {
			return &AzureCLICredentialOptions{DisableCache: true, devToolSeams: l.seams()}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := newToolLab(t, "fresh-1", "fresh-2")
			for i := 1; i <= 2; i++ {
				tok, _, err := l.process(t, o(l))
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("fresh-%d", i), tok)
			}
			assert.Equal(t, 2, l.runs(t))
			assert.NoFileExists(t, filepath.Join(l.store, toolStoreName))
		})
	}
}

func TestToolCacheCorruptFile(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1", "fresh-2")
	require.NoError(t, os.WriteFile(filepath.Join(l.store, toolStoreName), []byte("azc1 not a cache at all"), 0o600))
	var logs records
	o := &AzureCLICredentialOptions{Logger: slog.New(&logs), devToolSeams: l.seams()}
	tok, _, err := l.process(t, o)
	require.NoError(t, err, "a corrupt file is never an error")
	assert.Equal(t, "fresh-1", tok)
	assert.Empty(t, logs.above(slog.LevelInfo), "nothing above Info")
	assert.Positive(t, logs.count(slog.LevelDebug, "persistent token cache"), "the store's own warning, at Debug")
	aside, err := filepath.Glob(filepath.Join(l.store, toolStoreName+".corrupt-*"))
	require.NoError(t, err)
	assert.Len(t, aside, 1, "the corrupt file was set aside")
	tok, _, err = l.process(t, nil)
	require.NoError(t, err)
	assert.Equal(t, "fresh-1", tok, "and the new file works")
	assert.Equal(t, 1, l.runs(t))
}

func TestToolCacheNoKeyStore(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1", "fresh-2")
	for i := 1; i <= 2; i++ {
		var logs records
		s := l.seams()
		s.toolStore = storeIn(l.store, noKeyStoreHere{})
		tok, _, err := l.process(t, &AzureCLICredentialOptions{Logger: slog.New(&logs), devToolSeams: s})
		require.NoError(t, err, "no key store is never an error")
		assert.Equal(t, fmt.Sprintf("fresh-%d", i), tok, "az runs as it does without the cache")
		assert.Equal(t, 1, logs.count(slog.LevelDebug, "no persistent token cache"), "one Debug record")
		assert.Empty(t, logs.above(slog.LevelInfo))
	}
	assert.Equal(t, 2, l.runs(t))
	assert.NoFileExists(t, filepath.Join(l.store, toolStoreName))
}

func TestToolCacheUnreadableSignIn(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1", "fresh-2", "fresh-3")
	profile := filepath.Join(l.azDir, "azureProfile.json")
	require.NoError(t, os.Remove(profile))
	require.NoError(t, os.Mkdir(profile, 0o700)) // not a file: unreadable, even by root
	for i := 1; i <= 2; i++ {
		var logs records
		tok, _, err := l.process(t, &AzureCLICredentialOptions{Logger: slog.New(&logs), devToolSeams: l.seams()})
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("fresh-%d", i), tok)
		assert.Equal(t, 1, logs.count(slog.LevelDebug, "sign-in state cannot be read"))
		assert.Empty(t, logs.above(slog.LevelInfo))
	}
	// No home folder at all: the same.
	tok, _, err := l.process(t, &AzureCLICredentialOptions{devToolSeams: func() devToolSeams {
		s := l.seams()
		s.getenv = envMap()
		return s
	}()})
	require.NoError(t, err)
	assert.Equal(t, "fresh-3", tok, "az ran a third time")
	assert.Equal(t, 3, l.runs(t))
}

func TestToolCacheOtherTools(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "azd-1", "pwsh-2", "azd-3", "pwsh-4")
	azd := filepath.Join(l.home, ".azd")
	require.NoError(t, os.MkdirAll(filepath.Join(azd, "auth", "msal"), 0o700))
	writeJSON(t, filepath.Join(azd, "auth.json"), map[string]any{"auth": map[string]any{"account": map[string]any{"currentUser": map[string]string{"homeAccountId": "a.b"}}}})
	powershell := filepath.Join(l.home, ".Azure")
	require.NoError(t, os.MkdirAll(powershell, 0o700))
	writeJSON(t, filepath.Join(powershell, "AzureRmContext.json"), map[string]any{"DefaultContextKey": "alice (sub-1) - tenant-a"})
	ctx := context.Background()
	scope := TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}
	azdToken := func() string {
		c, err := NewAzureDeveloperCLICredential(&AzureDeveloperCLICredentialOptions{devToolSeams: l.seams()})
		require.NoError(t, err)
		tok, err := c.GetToken(ctx, scope)
		require.NoError(t, err)
		return tok.Token
	}
	pwshToken := func() string {
		c, err := NewAzurePowerShellCredential(&AzurePowerShellCredentialOptions{devToolSeams: l.seams()})
		require.NoError(t, err)
		tok, err := c.GetToken(ctx, scope)
		require.NoError(t, err)
		return tok.Token
	}
	assert.Equal(t, "fresh-1", azdToken())
	assert.Equal(t, "fresh-1", azdToken(), "azd: second process from the cache")
	assert.Equal(t, "fresh-2", pwshToken())
	assert.Equal(t, "fresh-2", pwshToken(), "PowerShell: second process from the cache")
	assert.Equal(t, 2, l.runs(t))
	// azd auth logout rewrites auth.json; Set-AzContext rewrites the context.
	writeJSON(t, filepath.Join(azd, "auth.json"), map[string]any{"auth": map[string]any{}})
	writeJSON(t, filepath.Join(powershell, "AzureRmContext.json"), map[string]any{"DefaultContextKey": "alice (sub-2) - tenant-a"})
	assert.Equal(t, "fresh-3", azdToken())
	assert.Equal(t, "fresh-4", pwshToken())
	assert.Equal(t, 4, l.runs(t))
}

// Two processes at once: the test binary re-executed twice, concurrently,
// with the same sign-in and store. Each gets a token az printed for this
// sign-in; az runs once or twice, never more, and a third process runs it
// not at all.

const toolCacheChildEnv = "AZCRED_TOOL_CACHE_CHILD"

// TestToolCacheChild is the child process. Run normally it does nothing.
func TestToolCacheChild(t *testing.T) {
	spec := os.Getenv(toolCacheChildEnv)
	if spec == "" {
		t.Skip("the child process of TestToolCacheTwoProcesses")
	}
	var l struct{ Bin, Home, Store string }
	require.NoError(t, json.Unmarshal([]byte(spec), &l))
	s := devToolSeams{runner: exec.OS{Path: l.Bin}, getenv: envMap("HOME", l.Home, "USERPROFILE", l.Home),
		toolStore: storeIn(l.Store, fileKeyStore{filepath.Join(l.Store, "key")})}
	c, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: s})
	require.NoError(t, err)
	tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	require.NoError(t, err)
	fmt.Println("TOKEN=" + tok.Token)
}

func TestToolCacheTwoProcesses(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "fresh-1", "fresh-2", "fresh-3")
	spec, err := json.Marshal(map[string]string{"Bin": l.bin, "Home": l.home, "Store": l.store})
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	child := func() (string, error) {
		cmd := osexec.Command(exe, "-test.run=^TestToolCacheChild$", "-test.v")
		cmd.Env = append(os.Environ(), toolCacheChildEnv+"="+string(spec))
		out, err := cmd.CombinedOutput()
		for line := range strings.Lines(string(out)) {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(line), "TOKEN="); ok {
				return tok, nil
			}
		}
		return "", fmt.Errorf("child: %v: %s", err, out)
	}
	var wg sync.WaitGroup
	toks := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { toks[i], errs[i] = child() })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	runs := l.runs(t)
	assert.Contains(t, []int{1, 2}, runs, "az ran once or twice")
	for _, tok := range toks {
		assert.Contains(t, []string{"fresh-1", "fresh-2"}[:runs], tok, "each got a token az printed for this sign-in")
	}
	third, err := child()
	require.NoError(t, err)
	assert.Contains(t, toks, third, "the third process gets one of theirs from the cache")
	assert.Equal(t, runs, l.runs(t), "without running az")
}

// BenchmarkToolCacheNewProcess is what a new process pays for az's token
// when the persistent cache holds it: a new AzureCLICredential, the sign-in
// state read (files, the az executable found), the store opened and read,
// no az run.
func BenchmarkToolCacheNewProcess(b *testing.B) {
	l := newToolLab(b, "fresh-1")
	_, err := processOnce(l)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := processOnce(l); err != nil {
			b.Fatal(err)
		}
	}
	require.Len(b, l.calls(b), 1, "az ran once, before the loop")
}

// processOnce is a new process's first token, without test assertions.
func processOnce(l *toolLab) (string, error) {
	c, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: l.seams()})
	if err != nil {
		return "", err
	}
	tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	return tok.Token, err
}

func TestToolCacheSignInChangesWhileAzRuns(t *testing.T) {
	t.Parallel()
	l := newToolLab(t)
	exp := time.Now().Add(time.Hour).Unix()
	var mu sync.Mutex
	run := 0
	runner := &recordingRunner{answer: func(exec.Command) (exec.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		run++
		tok := "alice-token"
		if run == 1 {
			// Another terminal's `az login` as bob finishes just before
			// this az reads its files: it answers for bob.
			l.signIn(t, l.azDir, "bob@fabrikam.com", "tenant-b", "sub-9")
			tok = "bob-token"
		}
		return exec.Result{Stdout: fmt.Appendf(nil, `{"accessToken":%q,"expires_on":%d}`, tok, exp)}, nil
	}}
	s := l.seams()
	s.runner = runner
	tok, _, err := l.process(t, &AzureCLICredentialOptions{devToolSeams: s})
	require.NoError(t, err)
	assert.Equal(t, "bob-token", tok)
	// alice signs in again: her files are byte for byte what they were
	// when the first run started. bob's token must not come back for her.
	l.signIn(t, l.azDir, "alice@contoso.com", "tenant-a", "sub-1")
	tok, _, err = l.process(t, &AzureCLICredentialOptions{devToolSeams: s})
	require.NoError(t, err)
	assert.Equal(t, "alice-token", tok, "a token from a run during which the sign-in changed is not kept")
	assert.Len(t, runner.commands(), 2)
	tok, _, err = l.process(t, &AzureCLICredentialOptions{devToolSeams: s})
	require.NoError(t, err)
	assert.Equal(t, "alice-token", tok)
	assert.Len(t, runner.commands(), 2, "a run without a change is kept")
}

func TestToolCacheToolMissing(t *testing.T) {
	t.Parallel()
	l := newToolLab(t)
	var logs records
	s := l.seams()
	s.runner = exec.OS{Path: t.TempDir()} // no az here
	_, _, err := l.process(t, &AzureCLICredentialOptions{Logger: slog.New(&logs), devToolSeams: s})
	var un *CredentialUnavailableError
	require.ErrorAs(t, err, &un, "not installed, as without the cache")
	assert.ErrorContains(t, err, "not installed")
	assert.Zero(t, logs.count(slog.LevelDebug, "sign-in state"), "no record about the sign-in state of a tool that is not there")
}

// With external authentication (AZD_AUTH_ENDPOINT, as the Visual Studio
// Code extension sets it), azd's identity is the one signed in to the
// program behind the endpoint, which no file records: switching accounts
// there changes nothing azd keeps on disk. The persistent cache cannot see
// that change, so it is not used: every process runs azd.
func TestToolCacheAzdExternalAuth(t *testing.T) {
	t.Parallel()
	l := newToolLab(t, "azd-1", "azd-2")
	azd := filepath.Join(l.home, ".azd")
	require.NoError(t, os.MkdirAll(azd, 0o700))
	writeJSON(t, filepath.Join(azd, "config.json"), map[string]any{"defaults": map[string]any{}})
	external := []string{"AZD_AUTH_ENDPOINT", "http://127.0.0.1:1/token", "AZD_AUTH_KEY", "k3y-of-the-session"}
	token := func() (string, *records) {
		var logs records
		c, err := NewAzureDeveloperCLICredential(&AzureDeveloperCLICredentialOptions{Logger: slog.New(&logs), devToolSeams: l.seams(external...)})
		require.NoError(t, err)
		tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		require.NoError(t, err)
		return tok.Token, &logs
	}
	first, _ := token()
	assert.Equal(t, "fresh-1", first)
	// The developer switches accounts in the editor: no file changes.
	second, logs := token()
	assert.Equal(t, "fresh-2", second, "azd ran again and answered for the account signed in now")
	assert.Equal(t, 2, l.runs(t))
	assert.Equal(t, 1, logs.count(slog.LevelDebug, "sign-in state cannot be read"), "one Debug record says why the cache is not used")
	assert.Empty(t, logs.above(slog.LevelInfo))
	var text strings.Builder
	logs.mu.Lock()
	for _, rec := range logs.recs {
		text.WriteString(rec.Message)
		rec.Attrs(func(a slog.Attr) bool { text.WriteString(" " + a.String()); return true })
	}
	logs.mu.Unlock()
	assert.Contains(t, text.String(), "AZD_AUTH_ENDPOINT", "the reason names the variable")
	assert.NotContains(t, text.String(), "k3y-of-the-session", "and not the key")
}

// A tool that is not installed leaves no trace of the persistent cache: the
// store (its folder, lock file and key-store key) is not even opened.
func TestToolCacheToolMissingOpensNoStore(t *testing.T) {
	t.Parallel()
	l := newToolLab(t)
	s := l.seams()
	s.runner = exec.OS{Path: t.TempDir()} // no az here
	var opened atomic.Int32
	s.toolStore = func(logger *slog.Logger) (cache.Store, error) {
		opened.Add(1)
		return storeIn(l.store, l.keys)(logger)
	}
	_, _, err := l.process(t, &AzureCLICredentialOptions{devToolSeams: s})
	require.ErrorContains(t, err, "not installed")
	assert.Zero(t, opened.Load(), "the store was opened for a tool that is not installed")
	assert.NoFileExists(t, filepath.Join(l.store, toolStoreName+".lock"))
}
