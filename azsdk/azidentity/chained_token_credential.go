package azidentity

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azsdk"
)

// ChainedTokenCredentialOptions contains optional parameters for
// ChainedTokenCredential.
type ChainedTokenCredentialOptions struct {
	// RetrySources makes every GetToken try the sources from the first,
	// instead of going straight to the source that gave the first token.
	// Default: false.
	RetrySources bool
}

// ChainedTokenCredential tries its sources in order and returns the first
// token one gives. A source that answers "unavailable" — an error of
// [NewCredentialUnavailableError], an [AuthenticationRequiredError], or an
// unavailable error of the azcred core or of azidentity — lets the chain try
// the next; any other error stops it. Unless RetrySources is set, the chain
// keeps using the source that worked. It adds no cache (its sources cache)
// and is safe for concurrent use.
//
// Its errors are an [AuthenticationFailedError] when a source failed, and an
// unavailable error (for an enclosing chain of this package) when every
// source was unavailable; both list every attempt.
type ChainedTokenCredential struct {
	chain  *azcred.ChainedTokenCredential
	logged atomic.Bool
}

// NewChainedTokenCredential constructs a ChainedTokenCredential of sources,
// tried in order. Credentials of this package join the chain directly; any
// other azcore.TokenCredential is called through azcore's interface. Pass
// nil to accept default options.
func NewChainedTokenCredential(sources []azcore.TokenCredential, options *ChainedTokenCredentialOptions) (*ChainedTokenCredential, error) {
	o := ChainedTokenCredentialOptions{}
	if options != nil {
		o = *options
	}
	if len(sources) == 0 {
		return nil, errors.New(credNameChain + ": sources must contain at least one TokenCredential")
	}
	list := make([]azcred.TokenCredential, len(sources))
	for i, s := range sources {
		switch s := s.(type) {
		case nil:
			return nil, fmt.Errorf("%s: sources[%d] is nil; pass only non-nil credentials", credNameChain, i)
		case coreBacked:
			list[i] = s.coreCredential()
		default:
			list[i] = foreign{s}
		}
	}
	chain, err := azcred.NewChainedTokenCredential(list, &azcred.ChainedTokenCredentialOptions{RetrySources: o.RetrySources})
	if err != nil {
		return nil, err
	}
	return &ChainedTokenCredential{chain: chain}, nil
}

// GetToken returns a token from the first source that gives one.
func (c *ChainedTokenCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.chain.GetToken(ctx, coreRequest(opts))
	if err != nil {
		return azcore.AccessToken{}, chainError(ctx, credNameChain, err)
	}
	if !c.logged.Load() && logShould(EventAuthentication) && c.logged.CompareAndSwap(false, true) {
		if name, ok := c.chain.Resolved(); ok {
			logWrite(EventAuthentication, credNameChain+" authenticated with "+name)
		}
	}
	return azcore.AccessToken{Token: tok.Token, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
}

// coreCredential lets an enclosing chain of this package use the azcred
// chain directly.
func (c *ChainedTokenCredential) coreCredential() azcred.TokenCredential { return c.chain }

// foreign is a credential of another package inside an azcred chain.
type foreign struct{ cred azcore.TokenCredential }

// GetToken calls the credential and puts its error in azcred's classes:
// this package's and azcred's unavailable errors stay unavailable, and the
// rest are classified as azsdk.FromAzcore does (azidentity's unavailable
// errors unavailable, anything else a failure).
func (f foreign) GetToken(ctx context.Context, opts azcred.TokenRequestOptions) (azcred.AccessToken, error) {
	tok, err := f.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: opts.Scopes, TenantID: opts.TenantID, Claims: opts.Claims, EnableCAE: opts.EnableCAE})
	if err == nil {
		return azcred.AccessToken{Token: tok.Token, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
	}
	unavailable, required, _ := classOf(err)
	if unavailable != nil || required != nil {
		return azcred.AccessToken{}, azcred.NewCredentialUnavailableError("TokenCredential", "unavailable", err)
	}
	_, err = azsdk.FromAzcore(failing{err}).GetToken(ctx, opts)
	return azcred.AccessToken{}, err
}

// failing is an azcore credential that returns err, so that azsdk.FromAzcore
// classifies err.
type failing struct{ err error }

func (f failing) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, f.err
}

var _ azcore.TokenCredential = (*ChainedTokenCredential)(nil)
