package azcred

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/exec"
	"github.com/azcred/azcred/internal/msi"
)

// Values a tool would read as an option, or a URL path as a dot segment.
var optionLike = []string{"-x", "--tenant", "-", ".", ".."}

func TestDevToolsRefuseOptionAndDotArguments(t *testing.T) {
	t.Parallel()
	for _, mk := range devToolMakers() {
		for _, v := range optionLike {
			t.Run(mk.name+"/"+v, func(t *testing.T) {
				t.Parallel()
				r := &recordingRunner{answer: func(exec.Command) (exec.Result, error) {
					return exec.Result{}, &exec.ExitError{Name: "tool", Code: 1}
				}}
				s := devToolSeams{runner: r, getenv: envMap(EnvAdditionallyAllowedTenants, "*")}
				_, err := mk.make(s, true, v)
				require.Error(t, err, "tenant option %q", v)
				assert.Contains(t, err.Error(), mk.name+": the tenant ID")

				cred, err := mk.make(s, true)
				require.NoError(t, err)
				_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: v})
				require.Error(t, err, "request tenant %q", v)
				assert.Contains(t, err.Error(), "the tenant ID")
				for _, scope := range []string{v, v + "/.default"} {
					_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{scope}})
					require.Error(t, err, "scope %q", scope)
					assert.Contains(t, err.Error(), "scope")
				}
				assert.Empty(t, r.commands(), "no tool ran with such an argument")
			})
		}
	}
}

func TestAzureCLIRefusesOptionAndDotSubscriptions(t *testing.T) {
	t.Parallel()
	for _, v := range append(optionLike, "-my subscription") {
		_, err := NewAzureCLICredential(&AzureCLICredentialOptions{Subscription: v})
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), "AzureCLICredential: the subscription")
		assert.Contains(t, err.Error(), "give the subscription's ID")
	}
	_, err := NewAzureCLICredential(&AzureCLICredentialOptions{Subscription: "my-sub.prod 2"})
	assert.NoError(t, err)
}

func TestEntraCredentialsRefuseDotAndOptionTenants(t *testing.T) {
	t.Parallel()
	for _, v := range append(optionLike, ".contoso.com", "-contoso.com") {
		_, err := NewClientSecretCredential(v, testClient, "secret", nil)
		require.Error(t, err, "tenant %q", v)
		assert.Contains(t, err.Error(), "ClientSecretCredential: the tenant ID")
	}
	for _, v := range []string{"contoso.onmicrosoft.com", "72f988bf-86f1-41af-91ab-2d7cd011db47", "organizations"} {
		_, err := NewClientSecretCredential(v, testClient, "secret", nil)
		assert.NoError(t, err, v)
	}

	e := newSecretEmulator(t, nil)
	cred := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) { o.AdditionallyAllowedTenants = []string{"*"} })
	before := len(e.Requests())
	for _, v := range optionLike {
		_, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: v})
		require.Error(t, err, "request tenant %q", v)
		assert.Contains(t, err.Error(), "the tenant ID")
	}
	for _, scope := range []string{"-x", ".", ".."} {
		_, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{scope}})
		require.Error(t, err, "scope %q", scope)
	}
	assert.Len(t, e.Requests(), before, "no request was sent")
}

func TestErrorTextsAreCutOnRuneBoundaries(t *testing.T) {
	t.Parallel()
	long := "x" + strings.Repeat("é", 400) // odd, so a byte cut at 300 splits a rune
	text := pipelinesErrorText([]byte(`{"message":"`+long+`"}`), "tok")
	assert.True(t, utf8.ValidString(text), "Azure DevOps message")
	assert.LessOrEqual(t, len(text), 300)

	_, err := msi.ParseToken([]byte(`{"access_token":"x","expires_on":"`+strings.Repeat("€", 30)+`"}`), time.Unix(1_700_000_000, 0))
	require.Error(t, err)
	assert.True(t, utf8.ValidString(err.Error()), "managed identity expiry: %q", err.Error())
	assert.NotContains(t, err.Error(), `\x`, "no rune split and escaped by %%q: %s", err.Error())

	msg := toolText(append([]byte(strings.Repeat("€", 1000)), 0xff, 0xfe), nil)
	assert.True(t, utf8.ValidString(msg), "tool text")
	assert.LessOrEqual(t, len(msg), maxToolText)
}
