// Package azcredtest has fake credentials for unit tests of code that takes
// an [azcred.TokenCredential]: a static one, a scripted one that returns
// tokens and errors in order, and a log of the calls each received.
//
// For tests of the real protocol, the emulator package
// (github.com/azcred/azcred/azcredtest/emulator) runs a local Entra ID and
// managed-identity endpoints.
package azcredtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/azcred/azcred"
)

// Name is the credential name a fake's errors carry.
const Name = "FakeCredential"

// Result is one scripted answer of a [Credential]: a token, or an error.
type Result struct {
	// Token is returned when Err is nil.
	Token azcred.AccessToken
	// Err, when set, is returned instead of a token.
	Err error
}

// Token returns a Result with a token of the given value that expires
// lifetime after now.
func Token(value string, lifetime time.Duration) Result {
	return Result{Token: azcred.AccessToken{Token: value, ExpiresOn: time.Now().Add(lifetime)}}
}

// Err returns a Result that fails with err.
func Err(err error) Result { return Result{Err: err} }

// Unavailable returns a Result that fails with an
// [*azcred.CredentialUnavailableError]: a chain tries its next source.
func Unavailable(message string) Result {
	return Err(azcred.NewCredentialUnavailableError(Name, message, nil))
}

// Failed returns a Result that fails with an [*azcred.AuthenticationFailedError]
// carrying statusCode and errorCode (such as "AADSTS7000215"): a chain stops.
func Failed(message string, statusCode int, errorCode string) Result {
	e := azcred.NewAuthenticationFailedError(Name, message, nil)
	e.StatusCode, e.ErrorCode = statusCode, errorCode
	return Err(e)
}

// AuthenticationRequired returns a Result that fails with an
// [*azcred.AuthenticationRequiredError] for the scopes of the call that gets it.
func AuthenticationRequired() Result {
	return Result{Err: errAuthRequired}
}

var errAuthRequired = &azcred.AuthenticationRequiredError{}

// Call is one GetToken call a fake received.
type Call struct {
	// Options are the call's request, its scopes copied.
	Options azcred.TokenRequestOptions
	// Time is when the call arrived.
	Time time.Time
}

// Credential is a fake [azcred.TokenCredential]. A static one (NewStatic)
// answers every call with the same token; a scripted one (NewScripted)
// answers with its results in order and fails clearly when they run out.
// Like the real credentials it refuses a call without scopes and returns the
// context's error when the context is done. It records every call. It is safe
// for concurrent use.
type Credential struct {
	mu     sync.Mutex
	static string
	script []Result
	next   int
	calls  []Call
}

// NewStatic returns a credential that answers every GetToken with token,
// valid for an hour from the call.
func NewStatic(token string) *Credential {
	return &Credential{static: token}
}

// NewScripted returns a credential that answers GetToken with results in
// order. Add more with Then.
func NewScripted(results ...Result) *Credential {
	return &Credential{script: slices.Clone(results)}
}

// Then appends results to a scripted credential's script and returns c.
func (c *Credential) Then(results ...Result) *Credential {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.script = append(c.script, results...)
	return c
}

// GetToken records the call and returns the next answer.
func (c *Credential) GetToken(ctx context.Context, opts azcred.TokenRequestOptions) (azcred.AccessToken, error) {
	opts.Scopes = slices.Clone(opts.Scopes)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, Call{Options: opts, Time: time.Now()})
	if err := ctx.Err(); err != nil {
		return azcred.AccessToken{}, err
	}
	if len(opts.Scopes) == 0 {
		return azcred.AccessToken{}, fmt.Errorf("%s: GetToken was called without scopes; real credentials refuse this too: pass at least one scope, such as \"https://management.azure.com/.default\"", Name)
	}
	if c.script == nil {
		return azcred.AccessToken{Token: c.static, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}
	if c.next >= len(c.script) {
		return azcred.AccessToken{}, fmt.Errorf("%s: GetToken call %d, but the script has only %d results: add more with Then", Name, len(c.calls), len(c.script))
	}
	r := c.script[c.next]
	c.next++
	if r.Err == errAuthRequired {
		return azcred.AccessToken{}, azcred.NewAuthenticationRequiredError(Name, opts, "")
	}
	return r.Token, r.Err
}

// Calls returns the calls received so far, oldest first.
func (c *Credential) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// CallCount returns how many calls were received.
func (c *Credential) CallCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// Remaining returns how many scripted results are left; a test can assert 0
// to check that the code under test made every call it should.
func (c *Credential) Remaining() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.script) - c.next
}

var _ azcred.TokenCredential = (*Credential)(nil)
