package emulatortest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
)

func TestWhoami(t *testing.T) {
	const tenant, client, secret = "72f988bf-86f1-41af-91ab-2d7cd011db47", "11111111-2222-3333-4444-555555555555", "test-secret"
	e := emulator.NewT(t, nil)
	if err := e.RegisterApp(emulator.App{TenantID: tenant, ClientID: client, Secrets: []string{secret}, Roles: []string{"Reader"}}); err != nil {
		t.Fatal(err)
	}

	// A fake of the API: it accepts only the emulator's tokens for its audience.
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := e.VerifyAccessToken(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil || claims["aud"] != "https://vault.azure.net" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(claims["appid"].(string)))
	}))
	defer api.Close()

	cred, err := azcred.NewClientSecretCredential(tenant, client, secret, &azcred.ClientSecretCredentialOptions{
		ClientOptions: azcred.ClientOptions{AuthorityHost: e.URL(), Transport: e.Client()},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Cred: cred, HTTP: api.Client(), Base: api.URL, Scope: "https://vault.azure.net/.default"}
	got, err := c.Whoami(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != client {
		t.Fatalf("whoami = %q, want %q", got, client)
	}

	// A wrong secret fails with Entra's code.
	bad, _ := azcred.NewClientSecretCredential(tenant, client, "wrong", &azcred.ClientSecretCredentialOptions{
		ClientOptions: azcred.ClientOptions{AuthorityHost: e.URL(), Transport: e.Client()},
	})
	c.Cred = bad
	if _, err := c.Whoami(context.Background()); err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("want AADSTS7000215, got %v", err)
	}
}
