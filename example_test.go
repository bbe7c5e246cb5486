package azcred_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest"
	"github.com/azcred/azcred/azcredtest/emulator"
)

// This example gets a token from the local Entra ID emulator, the way a test
// of your own code can; in production, leave AuthorityHost and Transport
// unset.
func ExampleNewClientSecretCredential() {
	e, err := emulator.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	const tenant, client, secret = "72f988bf-86f1-41af-91ab-2d7cd011db47", "11111111-2222-3333-4444-555555555555", "example-secret"
	if err := e.RegisterApp(emulator.App{TenantID: tenant, ClientID: client, Secrets: []string{secret}}); err != nil {
		log.Fatal(err)
	}

	cred, err := azcred.NewClientSecretCredential(tenant, client, secret, &azcred.ClientSecretCredentialOptions{
		ClientOptions: azcred.ClientOptions{AuthorityHost: e.URL(), Transport: e.Client()},
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		log.Fatal(err)
	}
	claims, err := e.VerifyAccessToken(tok.Token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cred)
	fmt.Println("audience:", claims["aud"])
	fmt.Println("valid for about an hour:", time.Until(tok.ExpiresOn).Round(time.Hour))
	fmt.Println("requests sent:", len(e.Requests()))
	// Output:
	// ClientSecretCredential{tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47, clientID: 11111111-2222-3333-4444-555555555555, clientSecret: REDACTED}
	// audience: https://management.azure.com
	// valid for about an hour: 1h0m0s
	// requests sent: 1
}

func ExampleParseCertificates() {
	data, err := os.ReadFile("testdata/certs/modern.pfx") // PKCS#12 as OpenSSL 3 writes it
	if err != nil {
		log.Fatal(err)
	}
	certs, key, err := azcred.ParseCertificates(data, []byte("fixture-password"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(certs[0].Subject.CommonName, "signs; chain:", len(certs)-1, "more; key present:", key != nil)
	// Output:
	// azcred test client signs; chain: 1 more; key present: true
}

func ExampleNewChainedTokenCredential() {
	first := azcredtest.NewScripted(azcredtest.Unavailable("no environment variables"))
	second := azcredtest.NewStatic("token-from-second")
	chain, err := azcred.NewChainedTokenCredential([]azcred.TokenCredential{first, second}, nil)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := chain.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	fmt.Println(tok.Token, err)
	name, _ := chain.Resolved()
	fmt.Println("resolved:", name)
	// Output:
	// token-from-second <nil>
	// resolved: source 2
}

func ExampleChainError() {
	chain, _ := azcred.NewChainedTokenCredential([]azcred.TokenCredential{
		azcredtest.NewScripted(azcredtest.Unavailable("not configured")),
		azcredtest.NewScripted(azcredtest.Failed("invalid client secret", 401, "AADSTS7000215")),
	}, nil)
	_, err := chain.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})

	var failed *azcred.AuthenticationFailedError
	var unavailable *azcred.CredentialUnavailableError
	fmt.Println("failed:", errors.As(err, &failed), failed.ErrorCode)
	fmt.Println("unavailable:", errors.As(err, &unavailable))
	var ce *azcred.ChainError
	if errors.As(err, &ce) {
		for _, a := range ce.Attempts() {
			fmt.Println(a.Source, a.Outcome)
		}
	}
	// Output:
	// failed: true AADSTS7000215
	// unavailable: false
	// source 1 unavailable
	// source 2 failed
}
