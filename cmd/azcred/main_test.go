package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The demo's fake az is this binary, re-executed.
	if len(os.Args) > 1 && os.Args[1] == fakeAzCommand {
		os.Exit(fakeAz(os.Args[2:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo"}, &out, &errOut)
	assert.Equal(t, 0, code, errOut.String())
	s := out.String()
	for _, want := range []string{
		"Local Entra ID emulator at https://127.0.0.1:",
		"\nClientSecretCredential\n",
		"\nClientCertificateCredential\n",
		"clientSecret: REDACTED",
		"certificateSHA256: ",
		"requests:    first GetToken 1, second GetToken 0 (served from the cache)",
		"aud:      https://management.azure.com",
		"tid:      " + demoTenant,
		"appid:    " + demoClient,
		"roles:    [Demo.Read]",
	} {
		assert.Contains(t, s, want)
	}
	assert.Equal(t, 2, strings.Count(s, "first GetToken 1, second GetToken 0"))
	for _, host := range []string{"developer laptop with az signed in", "AKS pod with workload identity", "Azure VM with a managed identity (IMDS)", "CI job with a service principal"} {
		assert.Contains(t, s, "== "+host)
	}
	if runtime.GOOS != "windows" {
		assert.Contains(t, s, "DefaultAzureCredential would use AzureCLICredential.")
		assert.Contains(t, s, "GetToken: AzureCLICredential gave a token for upn="+demoUser)
	}
	assert.Contains(t, s, "GetToken: WorkloadIdentityCredential gave a token for appid="+wiClientID)
	assert.Contains(t, s, "GetToken: ManagedIdentityCredential gave a token for appid=")
	assert.Contains(t, s, "GetToken: EnvironmentCredential gave a token for appid="+demoClient)
	assert.NotContains(t, s, demoSecret)
	assert.NotContains(t, s, "eyJ", "no token or JWT segment is printed")
	assert.Empty(t, errOut.String())
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		code    int
		out, er string
	}{
		{nil, 2, "", "usage: azcred"},
		{[]string{"help"}, 0, "usage: azcred", ""},
		{[]string{"nope"}, 2, "", `unknown command "nope"`},
		{[]string{"demo", "extra"}, 2, "", "takes no arguments"},
	} {
		var out, errOut bytes.Buffer
		assert.Equal(t, tc.code, run(context.Background(), tc.args, &out, &errOut), "%q", tc.args)
		if tc.out != "" {
			assert.Contains(t, out.String(), tc.out)
		}
		if tc.er != "" {
			assert.Contains(t, errOut.String(), tc.er)
		}
	}
}

func TestDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	assert.Equal(t, 1, run(ctx, []string{"demo"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "interrupted")
}
