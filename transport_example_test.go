package azcred_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
)

// This example calls a REST API with an *http.Client that adds bearer tokens.
// A loopback stand-in for Microsoft Graph checks the token; in production,
// list "graph.microsoft.com" and leave Base unset.
func ExampleNewBearerClient() {
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

	graph := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := e.VerifyAccessToken(tok)
		if err != nil || claims["aud"] != "https://graph.microsoft.com" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"appId":%q}`, claims["appid"])
	}))
	defer graph.Close()

	hc, err := azcred.NewBearerClient(cred, &azcred.BearerTransportOptions{
		Scopes: map[string][]string{
			strings.TrimPrefix(graph.URL, "https://"): {"https://graph.microsoft.com/.default"},
		},
		Base: graph.Client().Transport, // trusts the stand-in's certificate
	})
	if err != nil {
		log.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	res, err := hc.Get(graph.URL + "/v1.0/servicePrincipals/me")
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Status, string(body))
	// Output:
	// 200 OK {"appId":"11111111-2222-3333-4444-555555555555"}
}
