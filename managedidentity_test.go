package azcred

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/clock"
)

// miFixture is an emulator with a system-assigned and a user-assigned
// identity.
type miFixture struct {
	e      *emulator.Emulator
	system emulator.ManagedIdentity
	user   emulator.ManagedIdentity
}

func newMIFixture(t *testing.T) miFixture {
	t.Helper()
	e := emulator.NewT(t, nil)
	return miFixture{
		e:      e,
		system: e.SetSystemAssignedIdentity(emulator.ManagedIdentity{}),
		user: e.AddUserAssignedIdentity(emulator.ManagedIdentity{
			ClientID:   "0a1b2c3d-0000-4000-8000-00000000c1d0",
			ObjectID:   "0a1b2c3d-0000-4000-8000-0000000000b0",
			ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app",
		}),
	}
}

// miOptions points a credential at host h through its environment, with
// IMDSEndpoint set to a loopback address even when h is not IMDS, so that
// nothing can reach the real IMDS.
func miOptions(t *testing.T, h *emulator.MIHost, id ManagedIDKind) *ManagedIdentityCredentialOptions {
	t.Helper()
	kv := []string{}
	for k, v := range h.Env() {
		kv = append(kv, k, v)
	}
	o := &ManagedIdentityCredentialOptions{
		ClientOptions: ClientOptions{getenv: envMap(kv...)},
		ID:            id,
		IMDSEndpoint:  "http://127.0.0.1:9",
		himdsPath:     filepath.Join(t.TempDir(), "no-himds"),
	}
	if h.Kind() == emulator.HostIMDS {
		o.IMDSEndpoint = h.URL()
	}
	if h.Kind() == emulator.HostArc {
		o.arcKeyDir = h.KeyDir()
	}
	return o
}

func TestManagedIdentityDefaultIMDSBaseIsNeverUsedInTests(t *testing.T) {
	t.Parallel()
	// Constructing sends nothing; the guard is that the resolution is right.
	c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{ClientOptions: ClientOptions{getenv: envMap()}, himdsPath: filepath.Join(t.TempDir(), "none")})
	require.NoError(t, err)
	assert.Equal(t, "http://169.254.169.254/metadata/identity/oauth2/token", c.client.Endpoint())
	assert.Contains(t, c.String(), "source: IMDS")

	c, err = NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{ClientOptions: ClientOptions{getenv: envMap(EnvPodIdentityAuthorityHost, "http://127.0.0.1:1/")}, himdsPath: filepath.Join(t.TempDir(), "none")})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1/metadata/identity/oauth2/token", c.client.Endpoint())

	c, err = NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{IMDSEndpoint: "http://127.0.0.1:2", ClientOptions: ClientOptions{getenv: envMap(EnvPodIdentityAuthorityHost, "http://127.0.0.1:1/")}, himdsPath: filepath.Join(t.TempDir(), "none")})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:2/metadata/identity/oauth2/token", c.client.Endpoint(), "the option wins over the variable")

	_, err = NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{IMDSEndpoint: "ftp://x", ClientOptions: ClientOptions{getenv: envMap()}})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "ManagedIdentityCredential: "))
}

func TestManagedIdentitySourceDetection(t *testing.T) {
	t.Parallel()
	himds := filepath.Join(t.TempDir(), "himds")
	require.NoError(t, os.WriteFile(himds, nil, 0o600))
	none := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		name  string
		env   []string
		himds string
		want  string
	}{
		{"App Service", []string{EnvIdentityEndpoint, "http://127.0.0.1:1/msi/token", EnvIdentityHeader, "h"}, none, "App Service"},
		{"Service Fabric", []string{EnvIdentityEndpoint, "https://127.0.0.1:1/", EnvIdentityHeader, "h", EnvIdentityServerThumbprint, strings.Repeat("ab", 20)}, none, "Service Fabric"},
		{"Azure ML", []string{EnvMSIEndpoint, "http://127.0.0.1:1/MSI/token", EnvMSISecret, "s"}, none, "Azure ML"},
		{"Cloud Shell", []string{EnvMSIEndpoint, "http://127.0.0.1:1/oauth2/token"}, none, "Cloud Shell"},
		{"Arc by variables", []string{EnvIdentityEndpoint, "http://127.0.0.1:1/metadata/identity/oauth2/token", EnvIMDSEndpoint, "http://127.0.0.1:1"}, none, "Azure Arc"},
		{"Arc by agent file", nil, himds, "Azure Arc"},
		{"App Service wins over MSI_ENDPOINT", []string{EnvIdentityEndpoint, "http://127.0.0.1:1/msi/token", EnvIdentityHeader, "h", EnvMSIEndpoint, "http://127.0.0.1:2"}, himds, "App Service"},
		{"IDENTITY_ENDPOINT alone is IMDS", []string{EnvIdentityEndpoint, "http://127.0.0.1:1/"}, none, "IMDS"},
		{"IMDS", nil, none, "IMDS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{
				ClientOptions: ClientOptions{getenv: envMap(tc.env...)}, IMDSEndpoint: "http://127.0.0.1:9",
				himdsPath: tc.himds, arcKeyDir: t.TempDir(),
			})
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.client.Source().String())
		})
	}
}

// TestManagedIdentityEverySource checks, for every host and every kind of
// identity, the exact request the host saw and the token returned, or the
// constructor's refusal.
func TestManagedIdentityEverySource(t *testing.T) {
	t.Parallel()
	type host struct {
		name   string
		start  func(f miFixture, t *testing.T) (*emulator.MIHost, error)
		method string
		query  func(h *emulator.MIHost, f miFixture) map[string]string // without identity
		idKeys [3]string                                               // client, object, resource parameter ("" = refused)
		header func(h *emulator.MIHost) map[string]string
		tries  int
	}
	metadata := func(*emulator.MIHost) map[string]string { return map[string]string{"Metadata": "true"} }
	hosts := []host{
		{"IMDS", func(f miFixture, _ *testing.T) (*emulator.MIHost, error) { return f.e.StartIMDS() }, "GET",
			func(*emulator.MIHost, miFixture) map[string]string {
				return map[string]string{"api-version": "2018-02-01", "resource": "https://vault.azure.net"}
			}, [3]string{"client_id", "object_id", "msi_res_id"}, metadata, 1},
		{"App Service", func(f miFixture, _ *testing.T) (*emulator.MIHost, error) { return f.e.StartAppService() }, "GET",
			func(*emulator.MIHost, miFixture) map[string]string {
				return map[string]string{"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
			}, [3]string{"client_id", "object_id", "mi_res_id"},
			func(h *emulator.MIHost) map[string]string { return map[string]string{"X-Identity-Header": h.Secret()} }, 1},
		{"Service Fabric", func(f miFixture, _ *testing.T) (*emulator.MIHost, error) { return f.e.StartServiceFabric() }, "GET",
			func(*emulator.MIHost, miFixture) map[string]string {
				return map[string]string{"api-version": "2019-07-01-preview", "resource": "https://vault.azure.net"}
			}, [3]string{},
			func(h *emulator.MIHost) map[string]string {
				return map[string]string{"Secret": h.Secret(), "Accept": "application/json"}
			}, 1},
		{"Azure ML", func(f miFixture, _ *testing.T) (*emulator.MIHost, error) { return f.e.StartAzureML() }, "GET",
			func(_ *emulator.MIHost, f miFixture) map[string]string {
				return map[string]string{"api-version": "2017-09-01", "resource": "https://vault.azure.net", "clientid": f.system.ClientID}
			}, [3]string{"clientid", "", ""},
			func(h *emulator.MIHost) map[string]string { return map[string]string{"Secret": h.Secret()} }, 1},
		{"Cloud Shell", func(f miFixture, _ *testing.T) (*emulator.MIHost, error) { return f.e.StartCloudShell() }, "POST",
			func(*emulator.MIHost, miFixture) map[string]string { return map[string]string{} }, [3]string{}, metadata, 1},
		{"Azure Arc", func(f miFixture, t *testing.T) (*emulator.MIHost, error) { return f.e.StartArc(t.TempDir()) }, "GET",
			func(*emulator.MIHost, miFixture) map[string]string {
				return map[string]string{"api-version": "2020-06-01", "resource": "https://vault.azure.net"}
			}, [3]string{"client_id", "object_id", "msi_res_id"}, metadata, 2},
	}
	for _, hc := range hosts {
		for i, kind := range []string{"system", "client", "object", "resource"} {
			t.Run(hc.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				f := newMIFixture(t)
				h, err := hc.start(f, t)
				require.NoError(t, err)
				var id ManagedIDKind
				want := f.system
				switch kind {
				case "client":
					id, want = ClientID(f.user.ClientID), f.user
				case "object":
					id, want = ObjectID(f.user.ObjectID), f.user
				case "resource":
					id, want = ResourceID(f.user.ResourceID), f.user
				}
				c, err := NewManagedIdentityCredential(miOptions(t, h, id))
				if i > 0 && hc.idKeys[i-1] == "" {
					require.Error(t, err, "%s refuses a user-assigned identity by %s", hc.name, kind)
					assert.True(t, strings.HasPrefix(err.Error(), "ManagedIdentityCredential: "), err.Error())
					assert.Empty(t, h.Requests(), "refused at construction")
					return
				}
				require.NoError(t, err)
				assert.Equal(t, hc.name, c.client.Source().String())

				tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
				require.NoError(t, err)
				claims, err := f.e.VerifyAccessToken(tok.Token)
				require.NoError(t, err)
				assert.Equal(t, "https://vault.azure.net", claims["aud"])
				assert.Equal(t, want.ClientID, claims["appid"])
				assert.Equal(t, want.ObjectID, claims["oid"])
				assert.WithinDuration(t, time.Now().Add(time.Hour), tok.ExpiresOn, 2*time.Minute)

				reqs := h.Requests()
				require.Len(t, reqs, hc.tries)
				last := reqs[len(reqs)-1]
				assert.Equal(t, hc.method, last.Method)
				assert.Equal(t, strings.TrimPrefix(h.Endpoint(), h.URL()), last.Path)
				wantQuery := hc.query(h, f)
				if i > 0 {
					wantQuery[hc.idKeys[i-1]] = map[string]string{"client": f.user.ClientID, "object": f.user.ObjectID, "resource": f.user.ResourceID}[kind]
				}
				gotQuery := map[string]string{}
				for k, vs := range last.Query {
					require.Len(t, vs, 1)
					gotQuery[k] = vs[0]
				}
				assert.Equal(t, wantQuery, gotQuery, "exactly these query parameters")
				for k, v := range hc.header(h) {
					assert.Equal(t, v, last.Header.Get(k), "header %s", k)
				}
				for _, secret := range []string{"X-Identity-Header", "Secret", "Metadata", "Authorization"} {
					if _, ok := hc.header(h)[secret]; !ok && !(hc.tries == 2 && secret == "Authorization") {
						assert.Empty(t, last.Header.Get(secret), "no %s header for %s", secret, hc.name)
					}
				}
				if hc.method == "POST" {
					assert.Equal(t, map[string][]string{"resource": {"https://vault.azure.net"}}, map[string][]string(last.Form))
					assert.Equal(t, "application/x-www-form-urlencoded", last.Header.Get("Content-Type"))
				}
				if hc.tries == 2 {
					assert.Empty(t, reqs[0].Header.Get("Authorization"), "the first Arc request carries no key")
					assert.Equal(t, http.StatusUnauthorized, reqs[0].Status)
					assert.Regexp(t, `^Basic [0-9a-f]{64}$`, last.Header.Get("Authorization"))
				}

				again, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net"}})
				require.NoError(t, err)
				assert.Equal(t, tok.Token, again.Token, "the resource with or without /.default is one cache entry")
				assert.Len(t, h.Requests(), hc.tries)
			})
		}
	}
}

func TestManagedIdentityProcessWideCache(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h, err := f.e.StartIMDS()
	require.NoError(t, err)
	var tokens []string
	for range 3 {
		c, err := NewManagedIdentityCredential(miOptions(t, h, ClientID(f.user.ClientID)))
		require.NoError(t, err)
		tok, err := c.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
		tokens = append(tokens, tok.Token)
	}
	assert.Len(t, h.Requests(), 1, "three credentials for one identity and resource: one IMDS request")
	assert.Equal(t, tokens[0], tokens[2])

	// Another identity, or another resource, is another entry.
	c, err := NewManagedIdentityCredential(miOptions(t, h, nil))
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
	require.NoError(t, err)
	assert.Len(t, h.Requests(), 3)
}

func TestManagedIdentityScopes(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h, err := f.e.StartIMDS()
	require.NoError(t, err)
	c, err := NewManagedIdentityCredential(miOptions(t, h, nil))
	require.NoError(t, err)
	for _, scopes := range [][]string{nil, {"a/.default", "b/.default"}, {"/.default"}, {"https://x y/.default"}} {
		_, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: scopes})
		require.Error(t, err, "%q", scopes)
		assert.True(t, strings.HasPrefix(err.Error(), "ManagedIdentityCredential: "), err.Error())
	}
	assert.Empty(t, h.Requests())
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: "other-tenant"})
	require.NoError(t, err, "the tenant is ignored")
}

func TestManagedIdentityErrorClasses(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h, err := f.e.StartIMDS()
	require.NoError(t, err)

	c, err := NewManagedIdentityCredential(miOptions(t, h, ClientID("not-assigned")))
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.False(t, isUnavailable(err))
	assert.Equal(t, http.StatusBadRequest, af.StatusCode)
	assert.Contains(t, af.Response, "Identity not found")
	assert.True(t, strings.HasPrefix(err.Error(), "ManagedIdentityCredential: "), err.Error())

	bare := emulator.NewT(t, nil) // no system-assigned identity
	bh, err := bare.StartIMDS()
	require.NoError(t, err)
	c, err = NewManagedIdentityCredential(miOptions(t, bh, nil))
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	assert.True(t, isUnavailable(err), "no system-assigned identity: unavailable (%v)", err)
}

func TestManagedIdentityChainModeClosedPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	o := &ManagedIdentityCredentialOptions{ClientOptions: ClientOptions{getenv: envMap()}, IMDSEndpoint: "http://" + addr, chainMode: true, himdsPath: filepath.Join(t.TempDir(), "none")}
	c, err := NewManagedIdentityCredential(o)
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	var un *CredentialUnavailableError
	require.ErrorAs(t, err, &un)
	assert.Equal(t, "ManagedIdentityCredential", un.Credential)
}

func TestManagedIdentityChainModeHealthyIMDSOneRequest(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h, err := f.e.StartIMDS()
	require.NoError(t, err)
	o := miOptions(t, h, nil)
	o.chainMode = true
	c, err := NewManagedIdentityCredential(o)
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Len(t, h.Requests(), 1, "the first token costs one request")
}

// driveMIClock advances clk by step whenever something waits on it (the
// retry backoff), until stop is called.
func driveMIClock(clk *clock.Fake, step time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for clk.BlockUntilTimers(ctx, 1) == nil {
			clk.Advance(step)
		}
	}()
	return func() { cancel(); <-done }
}

func TestManagedIdentityChainModeEndsOnceIMDSHasAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault emulator.MIFault
		want  []int
	}{
		// Two drops: net/http may re-send once on a reused connection itself.
		{"dropped connections", emulator.MIFault{Count: 2, Drop: true}, []int{200, 0, 0, 200}},
		{"503", emulator.MIFault{Status: http.StatusServiceUnavailable, Body: []byte(`{"error":"busy"}`)}, []int{200, 503, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newMIFixture(t)
			h, err := f.e.StartIMDS()
			require.NoError(t, err)
			clk := clock.NewFake(time.Now())
			o := miOptions(t, h, nil)
			o.chainMode = true
			o.clock = clk
			c, err := NewManagedIdentityCredential(o)
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), armRequest)
			require.NoError(t, err)
			require.Len(t, h.Requests(), 1)

			// Hours later, a first request for another resource meets a
			// fault: IMDS is known to be there, so it is retried.
			h.InjectFault(tc.fault)
			stop := driveMIClock(clk, time.Second)
			tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
			stop()
			require.NoError(t, err)
			assert.NotEmpty(t, tok.Token)
			reqs := h.Requests()
			statuses := make([]int, len(reqs))
			for i, r := range reqs {
				statuses[i] = r.Status
				assert.Equal(t, "true", r.Header.Get("Metadata"), "no probe")
			}
			assert.Equal(t, tc.want, statuses)
		})
	}
}

func TestManagedIdentityArcRefusals(t *testing.T) {
	t.Parallel()
	keyDir := t.TempDir()
	outside := t.TempDir()
	big := filepath.Join(keyDir, "big.key")
	require.NoError(t, os.WriteFile(big, make([]byte, 4097), 0o600))
	txt := filepath.Join(keyDir, "secret.txt")
	require.NoError(t, os.WriteFile(txt, []byte("k"), 0o600))
	elsewhere := filepath.Join(outside, "x.key")
	require.NoError(t, os.WriteFile(elsewhere, []byte("k"), 0o600))
	challenge := func(realm string) emulator.MIFault {
		return emulator.MIFault{Status: 401, Header: http.Header{"Www-Authenticate": {realm}}, Body: []byte(`{"error":"unauthorized"}`)}
	}
	for _, tc := range []struct {
		name  string
		fault emulator.MIFault
		want  string
	}{
		{"no 401", emulator.MIFault{Status: 200, Body: []byte(`{"access_token":"x","expires_in":3600}`)}, "not the expected 401"},
		{"401 without challenge", emulator.MIFault{Status: 401, Body: []byte(`{}`)}, "WWW-Authenticate"},
		{"not Basic", challenge("Bearer realm=" + filepath.Join(keyDir, "a.key")), "WWW-Authenticate"},
		{"wrong extension", challenge("Basic realm=" + txt), "does not end in .key"},
		{"outside the folder", challenge("Basic realm=" + elsewhere), "outside the agent's token folder"},
		{"traversal", challenge("Basic realm=" + keyDir + "/../" + filepath.Base(outside) + "/x.key"), "outside the agent's token folder"},
		{"relative", challenge("Basic realm=x.key"), "outside the agent's token folder"},
		{"oversized", challenge("Basic realm=" + big), "at most 4096 bytes"},
		{"missing", challenge("Basic realm=" + filepath.Join(keyDir, "gone.key")), "cannot open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newMIFixture(t)
			h, err := f.e.StartArc(t.TempDir())
			require.NoError(t, err)
			h.InjectFault(tc.fault)
			o := miOptions(t, h, nil)
			o.arcKeyDir = keyDir
			c, err := NewManagedIdentityCredential(o)
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), armRequest)
			var af *AuthenticationFailedError
			require.ErrorAs(t, err, &af)
			assert.Contains(t, err.Error(), tc.want)
			assert.Len(t, h.Requests(), 1, "no key was sent")
		})
	}
}

func TestManagedIdentityArcUserAssignedMustBeEchoed(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h, err := f.e.StartArc(t.TempDir())
	require.NoError(t, err)
	h.SetTokenFields(func(m map[string]any) {
		m["client_id"] = f.system.ClientID
		delete(m, "object_id")
		delete(m, "msi_res_id")
	})
	for _, id := range []ManagedIDKind{ClientID(f.user.ClientID), ObjectID(f.user.ObjectID), ResourceID(f.user.ResourceID)} {
		c, err := NewManagedIdentityCredential(miOptions(t, h, id))
		require.NoError(t, err)
		_, err = c.GetToken(context.Background(), armRequest)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "did not confirm", fmt.Sprint(id))
	}
}

func TestManagedIdentityServiceFabricPinning(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h, err := f.e.StartServiceFabric()
	require.NoError(t, err)
	o := miOptions(t, h, nil)
	o.getenv = envMap(EnvIdentityEndpoint, h.Endpoint(), EnvIdentityHeader, h.Secret(), EnvIdentityServerThumbprint, strings.Repeat("AB", 20))
	c, err := NewManagedIdentityCredential(o)
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Contains(t, err.Error(), "thumbprint")
	assert.Empty(t, h.Requests(), "no request reached a server with the wrong certificate")

	o.getenv = envMap(EnvIdentityEndpoint, h.Endpoint(), EnvIdentityHeader, h.Secret(), EnvIdentityServerThumbprint, "not-hex")
	_, err = NewManagedIdentityCredential(o)
	require.Error(t, err)

	o.getenv = envMap(EnvIdentityEndpoint, strings.Replace(h.Endpoint(), "https", "http", 1), EnvIdentityHeader, h.Secret(), EnvIdentityServerThumbprint, h.Thumbprint())
	_, err = NewManagedIdentityCredential(o)
	require.Error(t, err, "Service Fabric must be https")

	o.getenv = envMap(EnvIdentityEndpoint, h.Endpoint(), EnvIdentityHeader, h.Secret(), EnvIdentityServerThumbprint, h.Thumbprint())
	o.Transport = TokenCredentialDoer{}
	_, err = NewManagedIdentityCredential(o)
	require.Error(t, err, "a Doer that cannot be copied cannot be pinned")
}

// TokenCredentialDoer is a Doer that is not an *http.Client.
type TokenCredentialDoer struct{}

func (TokenCredentialDoer) Do(*http.Request) (*http.Response, error) {
	return nil, errors.New("unused")
}

func TestManagedIdentityPrintsNoSecret(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h, err := f.e.StartAppService()
	require.NoError(t, err)
	c, err := NewManagedIdentityCredential(miOptions(t, h, ClientID(f.user.ClientID)))
	require.NoError(t, err)
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c, c, *c)} {
		assert.NotContains(t, s, h.Secret())
		assert.Contains(t, s, "App Service")
	}
}

func BenchmarkManagedIdentityCachedGetToken(b *testing.B) {
	e := emulator.NewT(b, nil)
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	h, err := e.StartIMDS()
	require.NoError(b, err)
	c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{ClientOptions: ClientOptions{getenv: envMap()}, IMDSEndpoint: h.URL(), himdsPath: filepath.Join(b.TempDir(), "none")})
	require.NoError(b, err)
	ctx := context.Background()
	_, err = c.GetToken(ctx, armRequest)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetToken(ctx, armRequest); err != nil {
			b.Fatal(err)
		}
	}
}
