package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/jwtx"
)

// The demo's identities. They exist only inside the emulator.
const (
	demoTenant = "00000000-0000-4000-8000-00000000d3a0"
	demoClient = "00000000-0000-4000-8000-0000000c11e7"
	demoSecret = "demo-secret-value"
	demoScope  = "https://management.azure.com/.default"
)

// demo starts the emulator on loopback, registers an app with a secret and a
// certificate, gets a token with each credential and prints what a token
// says about the identity that got it.
func demo(ctx context.Context, w io.Writer) error {
	e, err := emulator.New(nil)
	if err != nil {
		return fmt.Errorf("starting the emulator: %w", err)
	}
	defer e.Close()

	certPEM, err := demoCertificate()
	if err != nil {
		return err
	}
	certs, key, err := azcred.ParseCertificates(certPEM, nil)
	if err != nil {
		return err
	}
	if err := e.RegisterApp(emulator.App{
		TenantID:     demoTenant,
		ClientID:     demoClient,
		Secrets:      []string{demoSecret},
		Certificates: certs[:1],
		Roles:        []string{"Demo.Read"},
	}); err != nil {
		return fmt.Errorf("registering the demo app: %w", err)
	}
	fmt.Fprintf(w, "Local Entra ID emulator at %s (loopback only; nothing leaves this machine)\n", e.URL())
	fmt.Fprintf(w, "Registered app %s in tenant %s with a client secret and a certificate\n", demoClient, demoTenant)

	client := azcred.ClientOptions{AuthorityHost: e.URL(), Transport: e.Client()}
	secretCred, err := azcred.NewClientSecretCredential(demoTenant, demoClient, demoSecret, &azcred.ClientSecretCredentialOptions{ClientOptions: client})
	if err != nil {
		return err
	}
	certCred, err := azcred.NewClientCertificateCredential(demoTenant, demoClient, certs, key, &azcred.ClientCertificateCredentialOptions{ClientOptions: client})
	if err != nil {
		return err
	}

	for _, c := range []struct {
		name string
		cred azcred.TokenCredential
	}{{"ClientSecretCredential", secretCred}, {"ClientCertificateCredential", certCred}} {
		before := len(e.Requests())
		tok, err := c.cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{demoScope}})
		if err != nil {
			return err
		}
		first := len(e.Requests()) - before
		if _, err := c.cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{demoScope}}); err != nil {
			return err
		}
		second := len(e.Requests()) - before - first
		if err := printToken(w, c.name, c.cred, tok, first, second); err != nil {
			return err
		}
	}
	return demoHosts(ctx, w, e)
}

func printToken(w io.Writer, name string, cred azcred.TokenCredential, tok azcred.AccessToken, first, second int) error {
	var claims map[string]any
	if err := jwtx.DecodeClaims(tok.Token, &claims); err != nil {
		return fmt.Errorf("%s returned a token that is not a JWT: %w", name, err)
	}
	fmt.Fprintf(w, "\n%s\n", name)
	fmt.Fprintf(w, "  credential:  %v\n", cred)
	fmt.Fprintf(w, "  scope:       %s\n", demoScope)
	fmt.Fprintf(w, "  expires:     %s (in %s)\n", tok.ExpiresOn.Format(time.RFC3339), time.Until(tok.ExpiresOn).Round(time.Minute))
	fmt.Fprintf(w, "  requests:    first GetToken %d, second GetToken %d (served from the cache)\n", first, second)
	fmt.Fprintf(w, "  token:       %d bytes, not shown; its claims:\n", len(tok.Token))
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "    %-9s %s\n", k+":", claimText(k, claims[k]))
	}
	return nil
}

// claimText renders a claim; times become dates.
func claimText(name string, v any) string {
	switch name {
	case "iat", "nbf", "exp":
		if f, ok := v.(float64); ok {
			return fmt.Sprintf("%s (%d)", time.Unix(int64(f), 0).UTC().Format(time.RFC3339), int64(f))
		}
	}
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = fmt.Sprint(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// demoCertificate makes a throwaway self-signed RSA certificate and key, as
// PEM, the way a certificate file on disk would look.
func demoCertificate() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating the demo key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "azcred demo client"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating the demo certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), nil
}
