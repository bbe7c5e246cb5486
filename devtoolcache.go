package azcred

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/exec"
)

// The developer tools' persistent cache: a token a tool printed is kept,
// encrypted, in the user's cache folder, so that the next process of the
// same user gets it without starting the tool. An entry is named by the
// tool, the scopes, the tenant, the subscription and the fingerprint of the
// tool's sign-in state (devtoolstate.go) and is used only before its
// refresh time, the same rule as in memory. Anything that does not work —
// no key store, a file that cannot be read or written, a sign-in folder
// that cannot be read — leaves the credential as it is without the cache,
// with a Debug record; it is never an error.

// EnvDisableToolTokenCache names the variable that, set to "1" or "true",
// keeps the developer tools' tokens in memory only, as the
// DisablePersistentCache option of [AzureCLICredentialOptions],
// [AzurePowerShellCredentialOptions] and
// [AzureDeveloperCLICredentialOptions] does.
const EnvDisableToolTokenCache = env.DisableToolTokenCache // AZCRED_DISABLE_TOOL_TOKEN_CACHE

// toolStoreName is the persistent cache's file in the user's cache folder
// (on Linux ~/.cache/azcred/devtools).
const toolStoreName = "devtools"

// toolStoreOpener opens the store of the developer tools' tokens; logger
// receives the store's own records.
type toolStoreOpener func(logger *slog.Logger) (cache.Store, error)

// defaultToolStore is the encrypted file store in the user's cache folder.
// This package's tests replace it (see TestMain) so that no test writes to
// the cache of the user running them.
var defaultToolStore toolStoreOpener = func(logger *slog.Logger) (cache.Store, error) {
	return openToolStore("", nil, logger)
}

// openToolStore opens the tools' file store in dir with ks ("" and nil:
// the defaults).
func openToolStore(dir string, ks cache.KeyStore, logger *slog.Logger) (cache.Store, error) {
	return cache.NewFileStore(toolStoreName, &cache.FileStoreOptions{Dir: dir, KeyStore: ks, Logger: logger, LockTimeout: toolStoreLockTimeout})
}

// toolStoreLockTimeout bounds the wait for another process's lock on the
// tools' store (one stopped, or killed on Windows, while holding it): the
// store is only a speed-up, and the tool's own run must still fit in the
// fetch's bound.
const toolStoreLockTimeout = 2 * time.Second

// toolPersist is one credential's use of the persistent cache.
type toolPersist struct {
	tool   string // "az", "azd" or "pwsh": the entry's partition and messages
	extra  string // the subscription (Azure CLI), part of the entry's key
	state  stateReader
	getenv env.Getenv
	runner exec.Runner
	logger *slog.Logger
	name   string // the credential's name

	open  toolStoreOpener
	once  sync.Once
	store cache.Store // nil when the store could not be opened
}

// newToolPersist returns the credential's persistent cache, or nil when it
// is turned off (by option or environment variable).
func newToolPersist(cfg devToolConfig, getenv env.Getenv, runner exec.Runner, logger *slog.Logger) *toolPersist {
	if cfg.disableCache || cfg.disablePersist || cfg.state == nil || env.Bool(getenv(env.DisableToolTokenCache)) {
		return nil
	}
	open := cfg.seams.toolStore
	if open == nil {
		open = defaultToolStore
	}
	if open == nil {
		return nil
	}
	return &toolPersist{tool: cfg.short, extra: cfg.keyExtra, state: cfg.state, getenv: getenv, runner: runner, logger: logger, name: cfg.name, open: open}
}

// opened returns the store, opening it on first use; nil when it cannot be
// opened (logged once, at Debug).
func (p *toolPersist) opened(ctx context.Context) cache.Store {
	p.once.Do(func() {
		s, err := p.open(slog.New(debugOnly{p.logger.Handler()}))
		if err != nil {
			p.logger.LogAttrs(ctx, slog.LevelDebug, p.name+": no persistent token cache; tokens are kept in memory only", slog.String("reason", err.Error()))
			return
		}
		p.store = s
	})
	return p.store
}

// toolRun is one fetch's use of the persistent cache: the entry it names
// and the sign-in state it was named under.
type toolRun struct {
	p     *toolPersist
	store cache.Store
	key   cache.EntryKey
	state signInState
	cmd   exec.Command
}

// begin reads the sign-in state and looks for the request's token. It
// returns nil when the persistent cache plays no part in this fetch.
func (p *toolPersist) begin(ctx context.Context, r cache.Request, cmd exec.Command, now time.Time) (*toolRun, cache.Token, bool) {
	if p == nil || r.Claims != "" {
		return nil, cache.Token{}, false
	}
	// The state first: a tool that is not installed leaves no trace of
	// the store (folder, lock file, key-store key).
	st, err := p.fingerprint(cmd)
	if errors.Is(err, errToolMissing) {
		// The run reports it, as without the cache.
		return nil, cache.Token{}, false
	}
	if err != nil {
		p.logger.LogAttrs(ctx, slog.LevelDebug, p.name+": the sign-in state cannot be read, so the persistent token cache is not used", slog.String("reason", err.Error()))
		return nil, cache.Token{}, false
	}
	store := p.opened(ctx)
	if store == nil {
		return nil, cache.Token{}, false
	}
	run := &toolRun{p: p, store: store, state: st, cmd: cmd, key: p.key(r, st)}
	e, ok, err := store.Load(ctx, run.key)
	if err != nil {
		p.logger.LogAttrs(ctx, slog.LevelDebug, p.name+": reading the persistent token cache failed", slog.String("reason", err.Error()))
		return run, cache.Token{}, false
	}
	if !ok || e.Value == "" || !now.Before(e.RefreshOn) || !now.Before(e.ExpiresOn) {
		return run, cache.Token{}, false
	}
	since := ""
	if !st.since.IsZero() {
		since = " since " + st.since.Local().Format("2006-01-02 15:04:05")
	}
	noteOrigin(ctx, fmt.Sprintf("token from the persistent cache (%s sign-in unchanged%s)", p.tool, since))
	p.logger.LogAttrs(ctx, slog.LevelDebug, p.name+".GetToken took a token from the persistent cache; the tool was not started",
		slog.String("scopes", strings.Join(r.Scopes, " ")), slog.String("tenant", r.TenantID), slog.Time("expiresOn", e.ExpiresOn))
	return run, cache.Token(e), true
}

// save keeps the token the tool printed, under the state read before the
// run, provided that the state is still the same: a sign-in that changed
// while the tool ran may not be the one the token is for.
func (r *toolRun) save(ctx context.Context, t cache.Token, now time.Time) {
	if r == nil {
		return
	}
	p := r.p
	after, err := p.fingerprint(r.cmd)
	if err != nil || after.sum != r.state.sum {
		p.logger.LogAttrs(ctx, slog.LevelDebug, p.name+": the sign-in state changed while the tool ran; the token is kept in memory only")
		return
	}
	refreshOn, usable := cache.Schedule(now, t, 0)
	if !now.Before(usable) {
		return
	}
	if err := r.store.Save(ctx, r.key, cache.Entry{Value: t.Value, ExpiresOn: t.ExpiresOn, RefreshOn: refreshOn}); err != nil {
		p.logger.LogAttrs(ctx, slog.LevelDebug, p.name+": writing the persistent token cache failed; the token is kept in memory only", slog.String("reason", err.Error()))
	}
}

// fingerprint is the tool's sign-in state together with the executable
// that would run: a different az (another installation, or a test's fake
// one) never shares entries.
func (p *toolPersist) fingerprint(cmd exec.Command) (signInState, error) {
	st, err := p.state(p.getenv)
	if err != nil {
		return signInState{}, err
	}
	exe := "unknown runner"
	if f, ok := p.runner.(interface {
		Find(exec.Command) (string, error)
	}); ok {
		path, err := f.Find(cmd)
		if err != nil {
			return signInState{}, fmt.Errorf("%w: %w", errToolMissing, err)
		}
		h := newStateHash(st.sum)
		if err := h.stat(path); err != nil {
			return signInState{}, err
		}
		exe = h.state().sum
	}
	st.sum = newStateHash(st.sum, exe).state().sum
	return st, nil
}

// errToolMissing means the tool is not installed: no state to read.
var errToolMissing = errors.New("the tool is not installed")

// key names a request's entry: the tool, then tenant, subscription, the set
// of scopes and the sign-in state. Tools give the same token whatever
// EnableCAE says, so the entry has no CAE flag.
func (p *toolPersist) key(r cache.Request, st signInState) cache.EntryKey {
	scopes := slices.Clone(r.Scopes)
	slices.Sort(scopes)
	return cache.EntryKey{
		Kind:      cache.KindAccessToken,
		Partition: "devtool:" + p.tool,
		Key:       strings.Join([]string{r.TenantID, p.extra, strings.Join(slices.Compact(scopes), " "), st.sum}, "|"),
	}
}

// debugOnly is a slog.Handler that passes every record on at Debug: the
// store's warnings (a corrupt file set aside) are no concern of a
// developer-tool credential's user, whose token comes from the tool anyway.
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(attrs []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(attrs)} }
func (d debugOnly) WithGroup(name string) slog.Handler       { return debugOnly{d.h.WithGroup(name)} }

// Where a token came from, for DefaultAzureCredential.Diagnose: a source
// that answers from somewhere worth telling (the persistent cache) notes it
// in the context of the request.

type originKey struct{}

// origin holds the note of one request.
type origin struct {
	mu   sync.Mutex
	text string
}

// withOrigin returns a context in which sources may note where their token
// came from, and the note's holder.
func withOrigin(ctx context.Context) (context.Context, *origin) {
	o := &origin{}
	return context.WithValue(ctx, originKey{}, o), o
}

// noteOrigin records text in ctx's holder, when there is one.
func noteOrigin(ctx context.Context, text string) {
	if o, ok := ctx.Value(originKey{}).(*origin); ok {
		o.mu.Lock()
		o.text = text
		o.mu.Unlock()
	}
}

// get returns the note; "" when none was made. o may be nil.
func (o *origin) get() string {
	if o == nil {
		return ""
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text
}
