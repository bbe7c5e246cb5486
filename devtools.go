package azcred

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/exec"
	"github.com/azcred/azcred/internal/redact"
)

// What the developer-tool credentials (Azure CLI, Azure PowerShell, Azure
// Developer CLI) share: the runner, the tool timeout, the tenant rule, the
// one cache engine, chain mode and the reading of a tool's failures.

// defaultToolTimeout bounds one run of a developer tool.
const defaultToolTimeout = exec.DefaultTimeout

// devToolSeams are the unexported fields of the developer-tool credentials'
// options: the runner, the clock and the environment for tests, and chain
// mode, which DefaultAzureCredential sets.
type devToolSeams struct {
	runner exec.Runner
	clock  clock.Clock
	getenv env.Getenv
	// inChain makes every failure of the tool a *CredentialUnavailableError
	// that keeps the tool's message, so that a chain moves on to its next
	// source. DefaultAzureCredential sets it.
	inChain bool
	// toolStore opens the persistent cache; nil is the user's (see
	// defaultToolStore).
	toolStore toolStoreOpener
}

// devToolRun is what a credential's fetch asks the shared code to run, and
// how to read the answer.
type devToolRun struct {
	cmd exec.Command
	// parse reads the tool's stdout. Its errors never quote stdout, which
	// holds the token.
	parse func(stdout []byte) (cache.Token, error)
	// failure maps the text of a failed run (stderr, already stripped of
	// tokens) to the error users see. It returns nil when it recognises
	// nothing, and the shared code reports a generic failure.
	failure func(text string) error
}

// devTool is the engine of the three developer-tool credentials.
type devTool struct {
	name    string // the credential's name
	tool    string // the tool's name in messages, such as "the Azure CLI"
	install string // what to do when the tool is missing
	runner  exec.Runner
	timeout time.Duration
	tenants tenantPolicy
	engine  *cache.Engine // nil when caching is disabled
	persist *toolPersist  // nil when the persistent cache is off
	inChain bool
	logger  *slog.Logger
	clock   clock.Clock
	// prepare validates a request and returns what to run.
	prepare func(r cache.Request) (devToolRun, error)
}

// devToolConfig is what a credential's constructor hands newDevTool.
type devToolConfig struct {
	name, tool, install string
	tenantID            string
	allowed             []string
	timeout             time.Duration
	disableCache        bool
	// The persistent cache: the tool's short name ("az"), what else names
	// an entry (the subscription), how to read the sign-in state, and the
	// DisablePersistentCache option.
	short, keyExtra string
	state           stateReader
	disablePersist  bool
	logger          *slog.Logger
	seams           devToolSeams
	prepare         func(r cache.Request) (devToolRun, error)
}

func newDevTool(cfg devToolConfig) (*devTool, error) {
	if cfg.tenantID != "" {
		if err := validateTenantID(cfg.name, cfg.tenantID); err != nil {
			return nil, err
		}
	}
	if cfg.timeout < 0 {
		return nil, fmt.Errorf("%s: the Timeout option is negative (%s); give a positive duration, or 0 for the default of %s", cfg.name, cfg.timeout, defaultToolTimeout)
	}
	if cfg.timeout == 0 {
		cfg.timeout = defaultToolTimeout
	}
	runner := cfg.seams.runner
	if runner == nil {
		runner = exec.OS{}
	}
	logger := cfg.logger
	if logger == nil {
		logger = discardLogger
	}
	d := &devTool{
		name:    cfg.name,
		tool:    cfg.tool,
		install: cfg.install,
		runner:  runner,
		timeout: cfg.timeout,
		tenants: newTenantPolicy(cfg.name, cfg.tenantID, cfg.allowed, cfg.seams.getenv),
		inChain: cfg.seams.inChain,
		logger:  logger,
		clock:   clock.OrReal(cfg.seams.clock),
		prepare: cfg.prepare,
	}
	d.persist = newToolPersist(cfg, env.OrOS(cfg.seams.getenv), runner, logger)
	if !cfg.disableCache {
		// The engine's backstop must outlast the tool's own bound, which
		// the runner applies (plus the time to collect the killed group).
		d.engine = cache.New(d.fetch, &cache.Options{Clock: d.clock, RefreshTimeout: cfg.timeout + 10*time.Second})
	}
	return d, nil
}

// getToken is the GetToken of the developer-tool credentials: the tenant
// rule, then the cache (or, with caching disabled, the tool). Tools give the
// same token whatever EnableCAE says, so CAE and non-CAE requests share one
// cached token.
func (d *devTool) getToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	tenant := d.tenants.configured
	if opts.TenantID != "" {
		var err error
		if tenant, err = d.tenants.resolve(opts.TenantID); err != nil {
			return AccessToken{}, err
		}
	}
	r := cache.Request{Scopes: opts.Scopes, TenantID: tenant, Claims: opts.Claims}
	var t cache.Token
	var err error
	if d.engine != nil {
		t, err = d.engine.Get(ctx, r)
	} else {
		t, err = d.fetch(ctx, r)
	}
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: t.Value, ExpiresOn: t.ExpiresOn, RefreshOn: t.RefreshOn}, nil
}

// fetch runs the tool once. With caching on it is the engine's FetchFunc:
// ctx then carries the caller's values but not its cancellation, and the
// runner bounds the run by the Timeout option.
func (d *devTool) fetch(ctx context.Context, r cache.Request) (cache.Token, error) {
	run, err := d.prepare(r)
	if err != nil {
		return cache.Token{}, d.chain(err)
	}
	run.cmd.Timeout = d.timeout
	start := d.clock.Now()
	stored, tok, ok := d.persist.begin(ctx, r, run.cmd, start)
	if ok {
		return tok, nil
	}
	res, err := d.runner.Run(ctx, run.cmd)
	if err == nil {
		if tok, err = run.parse(res.Stdout); err != nil {
			err = scrubToolError(err, redact.New(stdoutSecrets(res.Stdout)...))
		}
	} else {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			res.Stdout = exitErr.Stdout
		}
		red := redact.New(stdoutSecrets(res.Stdout)...)
		err = scrubToolError(d.runError(err, run.failure, red), red)
	}
	if err != nil {
		d.logger.LogAttrs(ctx, levelInChain(d.inChain, slog.LevelWarn), d.name+".GetToken failed",
			slog.String("scopes", strings.Join(r.Scopes, " ")), slog.String("tenant", r.TenantID), slog.String("error", err.Error()))
		return cache.Token{}, d.chain(err)
	}
	d.logger.LogAttrs(ctx, levelInChain(d.inChain, slog.LevelInfo), d.name+".GetToken acquired a token",
		slog.String("scopes", strings.Join(r.Scopes, " ")), slog.String("tenant", r.TenantID),
		slog.Time("expiresOn", tok.ExpiresOn), slog.Duration("took", d.clock.Now().Sub(start)))
	stored.save(ctx, tok, d.clock.Now())
	return tok, nil
}

// runError turns what the runner returned into the error users see.
// Tool text it quotes is redacted by red.
func (d *devTool) runError(err error, failure func(string) error, red *redact.Redactor) error {
	var (
		notFound *exec.NotFoundError
		exitErr  *exec.ExitError
		timeout  *exec.TimeoutError
		tooLarge *exec.OutputTooLargeError
		start    *exec.StartError
	)
	switch {
	case errors.As(err, &notFound):
		return NewCredentialUnavailableError(d.name, fmt.Sprintf("%s (%s) is not installed or not on the search path; %s", d.tool, notFound.Name, d.install), nil)
	case errors.As(err, &exitErr):
		// Only stderr is quoted: stdout is where a tool prints its token,
		// and a tool may print one and still exit non-zero.
		text := toolText(exitErr.Stderr, red)
		if failure != nil {
			if e := failure(text); e != nil {
				return e
			}
		}
		if text == "" {
			text = fmt.Sprintf("it exited with status %d and printed nothing on stderr", exitErr.Code)
		}
		return d.failed(fmt.Sprintf("%s failed: %s", d.tool, text), text)
	case errors.As(err, &timeout):
		return d.failed(fmt.Sprintf("%s did not answer within %s, so it and its child processes were killed; run the tool's command in a terminal to see why, or raise the Timeout option", d.tool, timeout.Timeout), "")
	case errors.As(err, &tooLarge):
		return d.failed(fmt.Sprintf("%s wrote more than %d bytes to stdout, which is not a token answer, so it was stopped; check that the tool on the search path is the real one", d.tool, tooLarge.Limit), "")
	case errors.As(err, &start):
		return NewCredentialUnavailableError(d.name, fmt.Sprintf("%s could not be started (%s): %s; check the tool's installation", d.tool, start.Path, start.Err.Error()), nil)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return NewAuthenticationFailedError(d.name, fmt.Sprintf("the request for a token from %s ended before the tool answered", d.tool), err)
	}
	return NewAuthenticationFailedError(d.name, fmt.Sprintf("cannot run %s", d.tool), err)
}

// failed builds the *AuthenticationFailedError of a tool failure, with the
// Entra ID code found in text.
func (d *devTool) failed(message, text string) *AuthenticationFailedError {
	e := NewAuthenticationFailedError(d.name, message, nil)
	e.ErrorCode = aadstsCode.FindString(text)
	return e
}

// chain applies chain mode: a failure of the tool
// ([*AuthenticationFailedError]) becomes a [*CredentialUnavailableError]
// with the same message, so that the chain tries its next source. Outside a
// chain, and for errors in the request itself (a scope or tenant refused by
// validation), errors pass unchanged.
func (d *devTool) chain(err error) error {
	if !d.inChain || err == nil || isUnavailable(err) {
		return err
	}
	var af *AuthenticationFailedError
	if errors.As(err, &af) {
		return NewCredentialUnavailableError(af.Credential, af.Message, af.Err)
	}
	return err
}

// Reading a tool's text.

var aadstsCode = regexp.MustCompile(`AADSTS\d+`)

// maxToolText bounds the tool text quoted in an error.
const maxToolText = 2000

// toolText is a tool's stderr made fit for an error message: tokens of
// every shape and whatever red holds (the strings stdout held) removed,
// JSON escapes decoded, colour codes and surrounding space dropped, cut to
// maxToolText bytes on a rune boundary.
func toolText(b []byte, red *redact.Redactor) string {
	s := ansiEscape.ReplaceAllString(string(b), "")
	s = red.Text(s)
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	return redact.Truncate(s, maxToolText)
}

// The lengths from which a string a tool printed on stdout counts as a
// possible token: a JSON string value, and a word of a line that is not
// JSON (longer, since such lines hold ordinary words). Shorter strings (a
// zone, a type) would blank out ordinary words in messages.
const (
	minStdoutSecret     = 8
	minStdoutTextSecret = 16
)

// stdoutSecrets returns the strings of a tool's stdout that may be tokens,
// to be removed from anything reported about the run: every string value
// of its JSON lines, and every long word of lines that are not JSON (a
// PowerShell table, a message).
func stdoutSecrets(stdout []byte) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(v) >= minStdoutSecret {
				out = append(out, v)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	for line := range strings.SplitSeq(string(stdout), "\n") {
		var v any
		if json.Unmarshal([]byte(line), &v) == nil {
			walk(v)
			continue
		}
		for _, w := range strings.FieldsFunc(line, func(r rune) bool { return unicode.IsSpace(r) || r == '"' || r == '\'' || r == ',' }) {
			if len(w) >= minStdoutTextSecret {
				out = append(out, w)
			}
		}
	}
	if v := bytes.TrimSpace(stdout); len(v) > 0 && v[0] == '{' {
		var whole any
		if json.Unmarshal(v, &whole) == nil {
			walk(whole) // JSON over several lines
		}
	}
	return out
}

// scrubToolError removes red's secrets and every token shape from the
// messages of a developer-tool error: those of the *AuthenticationFailedError
// or *CredentialUnavailableError the credential built, and the text of
// their causes.
func scrubToolError(err error, red *redact.Redactor) error {
	if err == nil {
		return nil
	}
	var af *AuthenticationFailedError
	if errors.As(err, &af) {
		af.Message, af.Response, af.Err = red.String(af.Message), red.String(af.Response), red.Error(af.Err)
	}
	var un *CredentialUnavailableError
	if errors.As(err, &un) {
		un.Message, un.Err = red.String(un.Message), red.Error(un.Err)
	}
	return red.Error(err)
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// Validation. The tools get arguments, never a shell command line, so these
// checks are defence in depth: they keep anything but plain identifiers out
// of a tool's arguments and of PowerShell's script.

// validateToolScope checks a scope passed to a tool: letters, digits and
// ". - _ / :", not starting with '-', and neither it nor its resource (the
// scope without "/.default") "." or "..".
func validateToolScope(credential, scope string) error {
	const how = "give scopes such as \"https://management.azure.com/.default\""
	if scope == "" {
		return fmt.Errorf("%s: a scope is empty; %s", credential, how)
	}
	if err := argumentShape(credential, "scope", scope, how); err != nil {
		return err
	}
	if r := strings.TrimSuffix(scope, "/.default"); r != scope {
		if err := argumentShape(credential, "scope", r, how); err != nil {
			return err
		}
	}
	for _, r := range scope {
		if !isAlnum(r) && !strings.ContainsRune(".-_/:", r) {
			return fmt.Errorf("%s: the scope %q contains %q, which is not allowed in a scope passed to a developer tool (only letters, digits and \". - _ / :\" are); %s", credential, scope, r, how)
		}
	}
	return nil
}

// validateSubscription checks an Azure CLI subscription: letters, digits
// and "- _ . " (names may have spaces), not starting with '-' (az would read
// it as an option) and not "." or "..".
func validateSubscription(credential, sub string) error {
	const how = "give the subscription's ID, a GUID, instead of its name"
	if err := argumentShape(credential, "subscription", sub, how); err != nil {
		return err
	}
	for _, r := range sub {
		if !isAlnum(r) && !strings.ContainsRune("-_. ", r) {
			return fmt.Errorf("%s: the subscription %q contains %q, which is not allowed (only letters, digits, spaces and \"- _ .\" are); give the subscription's ID, a GUID, instead of its name", credential, sub, r)
		}
	}
	return nil
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// resourceOf turns the one scope of an Azure CLI or PowerShell request into
// the resource the tool takes ("https://x/.default" → "https://x").
func resourceOf(credential string, scopes []string) (string, error) {
	if len(scopes) != 1 {
		return "", fmt.Errorf("%s: GetToken needs exactly one scope, got %d; ask for one resource at a time, such as \"https://management.azure.com/.default\"", credential, len(scopes))
	}
	if err := validateToolScope(credential, scopes[0]); err != nil {
		return "", err
	}
	return strings.TrimSuffix(scopes[0], "/.default"), nil
}

// noColor is the environment every tool runs with on top of the inherited
// one: no colour codes in what it prints.
var noColor = []string{"AZURE_CORE_NO_COLOR=true", "NO_COLOR=true"}

// cacheDoc is shown in String: whether the credential caches.
func cacheDoc(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}
