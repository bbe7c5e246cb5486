package azidentity_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/azsdk/azidentity"
)

// selfSigned returns a PEM file holding a new certificate and its key.
func selfSigned(t *testing.T) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "azidentity drop-in test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	return cert, pemData
}

func TestClientCertificateCredential(t *testing.T) {
	t.Parallel()
	e := emulator.NewT(t, nil)
	cert, pemData := selfSigned(t)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Certificates: []*x509.Certificate{cert}}))
	certs, key, err := azidentity.ParseCertificates(pemData, nil)
	require.NoError(t, err)
	cred, err := azidentity.NewClientCertificateCredential(testTenant, testClient, certs, key, &azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(e), SendCertificateChain: true})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, testClient, claims["appid"])
	reqs := tokenRequests(e)
	require.Len(t, reqs, 1)
	assert.NotEmpty(t, reqs[0].Form.Get("client_assertion"))
}

// federated returns an emulator whose app trusts a Kubernetes issuer's
// service account "ns/app", and a token of that service account.
func federated(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	e := emulator.NewT(t, nil)
	k := emulator.NewKubernetesIssuerT(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Federated: []emulator.FederatedCredential{k.FederatedCredential("ns", "app")}}))
	sa, err := k.Mint(emulator.ServiceAccountToken{Namespace: "ns", Name: "app"})
	require.NoError(t, err)
	return e, sa
}

func TestClientAssertionCredential(t *testing.T) {
	t.Parallel()
	e, sa := federated(t)
	calls := 0
	cred, err := azidentity.NewClientAssertionCredential(testTenant, testClient, func(context.Context) (string, error) { calls++; return sa, nil },
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	_, err = e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, 1, calls)
}

func TestWorkloadIdentityCredential(t *testing.T) {
	t.Parallel()
	e, sa := federated(t)
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(sa), 0o600))
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: clientOptions(e), TenantID: testTenant, ClientID: testClient, TokenFilePath: file,
	})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, testClient, claims["appid"])
}

// userTenant has a user, a public client app and a middle-tier API app.
const (
	publicApp  = "22222222-3333-4444-5555-666666666666"
	middleTier = "33333333-4444-5555-6666-777777777777"
	username   = "ada@contoso.example"
	password   = "p@ssw0rd-Value~1"
	midSecret  = "middle-tier-Secret~9"
)

func userEmulator(t *testing.T) *emulator.Emulator {
	t.Helper()
	e := emulator.NewT(t, nil)
	require.NoError(t, e.AddUser(emulator.User{TenantID: testTenant, Username: username, Password: password}))
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: publicApp, PublicClient: true}))
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: middleTier, Secrets: []string{midSecret}, IdentifierURIs: []string{"api://" + middleTier}}))
	return e
}

func TestUsernamePasswordAndOnBehalfOf(t *testing.T) {
	t.Parallel()
	e := userEmulator(t)
	ctx := context.Background()
	user, err := azidentity.NewUsernamePasswordCredential(testTenant, publicApp, username, password, &azidentity.UsernamePasswordCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	rec, err := user.Authenticate(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, username, rec.Username)
	assert.Equal(t, testTenant, rec.TenantID)
	assert.Equal(t, publicApp, rec.ClientID)
	assert.Equal(t, "1.0", rec.Version)
	assert.NotEmpty(t, rec.HomeAccountID)
	js, err := json.Marshal(rec)
	require.NoError(t, err)
	var back azidentity.AuthenticationRecord
	require.NoError(t, json.Unmarshal(js, &back))
	assert.Equal(t, rec, back)
	assert.Error(t, json.Unmarshal([]byte(`{"version":"2.0"}`), &back), "unknown record versions are refused")
	assert.NotContains(t, string(js), password)

	userTok, err := user.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://" + middleTier + "/.default"}})
	require.NoError(t, err)
	obo, err := azidentity.NewOnBehalfOfCredentialWithSecret(testTenant, middleTier, userTok.Token, midSecret, &azidentity.OnBehalfOfCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	tok, err := obo.GetToken(ctx, armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	userClaims, err := e.VerifyAccessToken(userTok.Token)
	require.NoError(t, err)
	assert.Equal(t, userClaims["oid"], claims["oid"], "the token is the user's")
	assert.NotContains(t, obo.String(), midSecret)
}

func TestDeviceCodeCredentialSignsInAndAuthenticates(t *testing.T) {
	t.Parallel()
	e := userEmulator(t)
	e.SetDeviceCodeTiming(time.Second, time.Minute)
	require.NoError(t, e.SetSignIn(emulator.SignIn{TenantID: testTenant, Username: username}))
	var prompted []azidentity.DeviceCodeMessage
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: clientOptions(e), TenantID: testTenant, ClientID: publicApp,
		UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
			prompted = append(prompted, m)
			return e.ApproveDeviceCode(m.UserCode)
		},
	})
	require.NoError(t, err)
	rec, err := cred.Authenticate(context.Background(), &armRequest)
	require.NoError(t, err)
	require.Len(t, prompted, 1)
	assert.NotEmpty(t, prompted[0].VerificationURL)
	assert.Equal(t, username, rec.Username)

	// The record lets a second credential with automatic sign-in off find
	// the account; without a persistent cache it has no refresh token, so
	// it asks for a sign-in with azidentity's error.
	second, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: clientOptions(e), TenantID: testTenant, ClientID: publicApp,
		AuthenticationRecord: rec, DisableAutomaticAuthentication: true,
	})
	require.NoError(t, err)
	_, err = second.GetToken(context.Background(), armRequest)
	var required *azidentity.AuthenticationRequiredError
	assert.ErrorAs(t, err, &required)

	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err, "the signed-in credential has the token")
	_, err = e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Len(t, prompted, 1, "no second prompt")
}

var _ azcore.TokenCredential = (*azidentity.DeviceCodeCredential)(nil)

func TestAzurePipelinesCredential(t *testing.T) {
	const connection, access = "4c6b1d2e-0f3a-4b5c-8d7e-9f0a1b2c3d4e", "system-access-Token~1"
	devops := emulator.NewDevOpsOIDC(t, emulator.DevOpsOIDCOptions{AccessToken: access, ServiceConnectionID: connection, TLS: true})
	e := emulator.NewT(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Federated: []emulator.FederatedCredential{devops.FederatedCredential()}}))
	// One transport that trusts both fakes' certificates.
	tr := devops.Client().Transport.(*http.Transport).Clone()
	require.True(t, tr.TLSClientConfig.RootCAs.AppendCertsFromPEM(e.CertPEM()))
	o := clientOptions(e)
	o.Transport = &http.Client{Transport: tr}
	t.Setenv("SYSTEM_OIDCREQUESTURI", devops.URL())
	cred, err := azidentity.NewAzurePipelinesCredential(testTenant, testClient, connection, access, &azidentity.AzurePipelinesCredentialOptions{ClientOptions: o})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, testClient, claims["appid"])
	require.Len(t, devops.Requests(), 1)
	assert.Contains(t, devops.Requests()[0].Header.Get("User-Agent"), "azsdk-go-azidentity/", "the DevOps request went through the pipeline")
	assert.NotContains(t, cred.String(), access)
}
