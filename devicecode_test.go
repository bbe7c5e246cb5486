package azcred

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/clock"
)

// deviceFixture is a device code credential and an emulator sharing a fake
// clock; prompts arrive on a channel.
type deviceFixture struct {
	e       *emulator.Emulator
	clk     *clock.Fake
	cred    *DeviceCodeCredential
	prompts chan DeviceCodeMessage
}

func newDeviceFixture(t *testing.T, modify func(*DeviceCodeCredentialOptions)) *deviceFixture {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	f := &deviceFixture{e: newPublicEmulator(t, &emulator.Options{Clock: clk}), clk: clk, prompts: make(chan DeviceCodeMessage, 4)}
	co := emulatorOptions(f.e)
	co.clock = clk
	o := &DeviceCodeCredentialOptions{ClientOptions: co, ClientID: testPublicClient, TenantID: testTenant,
		UserPrompt: func(_ context.Context, m DeviceCodeMessage) error { f.prompts <- m; return nil }}
	if modify != nil {
		modify(o)
	}
	var err error
	f.cred, err = NewDeviceCodeCredential(o)
	require.NoError(t, err)
	return f
}

type tokenResult struct {
	tok AccessToken
	err error
}

func (f *deviceFixture) getAsync(ctx context.Context, opts TokenRequestOptions) <-chan tokenResult {
	ch := make(chan tokenResult, 1)
	go func() {
		tok, err := f.cred.GetToken(ctx, opts)
		ch <- tokenResult{tok, err}
	}()
	return ch
}

// step waits until the credential waits for its poll timer, then moves
// the clock by d.
func (f *deviceFixture) step(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.clk.BlockUntilTimers(ctx, 1))
	f.clk.Advance(d)
}

func (f *deviceFixture) polls() int {
	n := 0
	for _, r := range f.e.Requests() {
		if r.Form.Get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code" {
			n++
		}
	}
	return n
}

func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

func TestDeviceCodePendingApproveToken(t *testing.T) {
	t.Parallel()
	f := newDeviceFixture(t, nil)
	res := f.getAsync(context.Background(), armRequest)
	m := await(t, f.prompts)
	assert.Len(t, m.UserCode, 9)
	assert.Equal(t, f.e.DeviceLoginURL(), m.VerificationURL)
	assert.Contains(t, m.Message, m.UserCode)
	assert.Equal(t, f.clk.Now().Add(15*time.Minute), m.ExpiresOn)

	f.step(t, 5*time.Second) // pending
	f.step(t, 4*time.Second)
	assert.Equal(t, 1, f.polls(), "the server's 5 s interval is honoured")
	require.NoError(t, f.e.ApproveDeviceCode(m.UserCode))
	f.clk.Advance(time.Second)
	r := await(t, res)
	require.NoError(t, r.err)
	claims, err := f.e.VerifyAccessToken(r.tok.Token)
	require.NoError(t, err)
	assert.Equal(t, testUser, claims["upn"])
	assert.Equal(t, 2, f.polls())

	// Silent afterwards: a second resource costs one refresh, no prompt.
	_, err = f.cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	require.NoError(t, err)
	got, _, dc := grants(f.e)
	assert.Equal(t, "refresh_token", got[len(got)-1])
	assert.Equal(t, 1, dc)
	assert.Empty(t, f.prompts)
}

func TestDeviceCodeSlowDown(t *testing.T) {
	t.Parallel()
	f := newDeviceFixture(t, nil)
	f.e.InjectFault(emulator.Fault{Path: "/token", Status: 400, Body: []byte(`{"error":"slow_down","error_description":"AADSTS70016: slow down","error_codes":[70016]}`)})
	res := f.getAsync(context.Background(), armRequest)
	m := await(t, f.prompts)
	f.step(t, 5*time.Second) // slow_down: the interval becomes 10 s
	f.step(t, 9*time.Second)
	assert.Equal(t, 1, f.polls(), "no poll before 10 s")
	require.NoError(t, f.e.ApproveDeviceCode(m.UserCode))
	f.clk.Advance(time.Second)
	require.NoError(t, await(t, res).err)
	assert.Equal(t, 2, f.polls())
}

func TestDeviceCodeDeclinedExpiredCancelled(t *testing.T) {
	t.Parallel()
	t.Run("declined", func(t *testing.T) {
		t.Parallel()
		f := newDeviceFixture(t, nil)
		res := f.getAsync(context.Background(), armRequest)
		m := await(t, f.prompts)
		require.NoError(t, f.e.DeclineDeviceCode(m.UserCode))
		f.step(t, 5*time.Second)
		err := await(t, res).err
		var af *AuthenticationFailedError
		require.ErrorAs(t, err, &af)
		assert.Contains(t, err.Error(), "the user declined the sign-in")
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		f := newDeviceFixture(t, nil)
		f.e.SetDeviceCodeTiming(5*time.Second, 12*time.Second)
		res := f.getAsync(context.Background(), armRequest)
		await(t, f.prompts)
		f.step(t, 5*time.Second)
		f.step(t, 5*time.Second)
		f.step(t, 2*time.Second) // the last wait is cut to the expiry
		err := await(t, res).err
		var af *AuthenticationFailedError
		require.ErrorAs(t, err, &af)
		assert.Contains(t, err.Error(), "device code expired")
		assert.Contains(t, err.Error(), "AADSTS70020")
	})
	t.Run("caller cancels", func(t *testing.T) {
		t.Parallel()
		f := newDeviceFixture(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		res := f.getAsync(ctx, armRequest)
		await(t, f.prompts)
		require.NoError(t, f.clk.BlockUntilTimers(context.Background(), 1))
		cancel()
		err := await(t, res).err
		assert.ErrorIs(t, err, context.Canceled)
		f.cred.client.engine.Wait()
	})
	t.Run("prompt fails", func(t *testing.T) {
		t.Parallel()
		f := newDeviceFixture(t, func(o *DeviceCodeCredentialOptions) {
			o.UserPrompt = func(context.Context, DeviceCodeMessage) error { return errors.New("no terminal") }
		})
		_, err := f.cred.GetToken(context.Background(), armRequest)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "UserPrompt callback failed: no terminal")
	})
}

func TestDeviceCodeDisableAutomaticAuthentication(t *testing.T) {
	t.Parallel()
	f := newDeviceFixture(t, func(o *DeviceCodeCredentialOptions) { o.DisableAutomaticAuthentication = true })
	_, err := f.cred.GetToken(context.Background(), armRequest)
	var ar *AuthenticationRequiredError
	require.ErrorAs(t, err, &ar)
	assert.Equal(t, armRequest, ar.TokenRequestOptions)
	assert.Contains(t, err.Error(), "DeviceCodeCredential: ")
	assert.Contains(t, err.Error(), "call Authenticate")
	_, _, dc := grants(f.e)
	assert.Zero(t, dc)
}
