package azcredtest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest"
)

var scope = azcred.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}

func TestStatic(t *testing.T) {
	t.Parallel()
	c := azcredtest.NewStatic("tok")
	for range 3 {
		tok, err := c.GetToken(context.Background(), scope)
		require.NoError(t, err)
		assert.Equal(t, "tok", tok.Token)
		assert.WithinDuration(t, time.Now().Add(time.Hour), tok.ExpiresOn, time.Minute)
	}
	assert.Equal(t, 3, c.CallCount())
	assert.Equal(t, 0, c.Remaining())
}

func TestScriptedInOrderThenExhausted(t *testing.T) {
	t.Parallel()
	c := azcredtest.NewScripted(
		azcredtest.Token("one", time.Hour),
		azcredtest.Unavailable("no env"),
		azcredtest.Failed("bad secret", 401, "AADSTS7000215"),
		azcredtest.AuthenticationRequired(),
		azcredtest.Err(context.DeadlineExceeded),
	)
	ctx := context.Background()

	tok, err := c.GetToken(ctx, scope)
	require.NoError(t, err)
	assert.Equal(t, "one", tok.Token)

	_, err = c.GetToken(ctx, scope)
	var u *azcred.CredentialUnavailableError
	require.ErrorAs(t, err, &u)
	assert.Equal(t, "FakeCredential: no env", err.Error())

	_, err = c.GetToken(ctx, scope)
	var f *azcred.AuthenticationFailedError
	require.ErrorAs(t, err, &f)
	assert.Equal(t, 401, f.StatusCode)
	assert.Equal(t, "AADSTS7000215", f.ErrorCode)
	assert.False(t, errors.As(err, &u), "a failure is not unavailable")

	_, err = c.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{"s2"}})
	var r *azcred.AuthenticationRequiredError
	require.ErrorAs(t, err, &r)
	assert.Equal(t, []string{"s2"}, r.TokenRequestOptions.Scopes, "carries the call's options")
	assert.ErrorAs(t, err, &u, "required matches unavailable")

	_, err = c.GetToken(ctx, scope)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 0, c.Remaining())

	_, err = c.GetToken(ctx, scope)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "script has only 5 results")

	c.Then(azcredtest.Token("two", time.Minute))
	tok, err = c.GetToken(ctx, scope)
	require.NoError(t, err)
	assert.Equal(t, "two", tok.Token)
	assert.Equal(t, 7, c.CallCount())
}

func TestCallsRecordedAndCopied(t *testing.T) {
	t.Parallel()
	c := azcredtest.NewStatic("t")
	scopes := []string{"a", "b"}
	_, err := c.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: scopes, TenantID: "x", Claims: "{}", EnableCAE: true})
	require.NoError(t, err)
	scopes[0] = "changed"
	calls := c.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, azcred.TokenRequestOptions{Scopes: []string{"a", "b"}, TenantID: "x", Claims: "{}", EnableCAE: true}, calls[0].Options)
	assert.False(t, calls[0].Time.IsZero())
}

func TestRefusesLikeRealCredentials(t *testing.T) {
	t.Parallel()
	c := azcredtest.NewScripted(azcredtest.Token("unused", time.Hour))
	_, err := c.GetToken(context.Background(), azcred.TokenRequestOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without scopes")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.GetToken(ctx, scope)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, c.Remaining(), "refused calls consume nothing")
	assert.Equal(t, 2, c.CallCount(), "refused calls are still recorded")
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	results := make([]azcredtest.Result, 100)
	for i := range results {
		results[i] = azcredtest.Token("t", time.Hour)
	}
	c := azcredtest.NewScripted(results...)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			_, err := c.GetToken(context.Background(), scope)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 0, c.Remaining())
	assert.Equal(t, 100, c.CallCount())
}
