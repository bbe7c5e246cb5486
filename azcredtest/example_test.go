package azcredtest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest"
)

// authHeader is code under test: it builds an Authorization header value.
func authHeader(ctx context.Context, cred azcred.TokenCredential) (string, error) {
	tok, err := cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		return "", err
	}
	return "Bearer " + tok.Token, nil
}

func ExampleNewStatic() {
	cred := azcredtest.NewStatic("fake-token")
	h, err := authHeader(context.Background(), cred)
	fmt.Println(h, err)
	fmt.Println(cred.Calls()[0].Options.Scopes)
	// Output:
	// Bearer fake-token <nil>
	// [https://vault.azure.net/.default]
}

func ExampleNewScripted() {
	cred := azcredtest.NewScripted(
		azcredtest.Failed("invalid client secret", 401, "AADSTS7000215"),
		azcredtest.Token("second-try", time.Hour),
	)
	_, err := authHeader(context.Background(), cred)
	var failed *azcred.AuthenticationFailedError
	fmt.Println(errors.As(err, &failed), failed.ErrorCode)

	h, _ := authHeader(context.Background(), cred)
	fmt.Println(h, cred.Remaining())
	// Output:
	// true AADSTS7000215
	// Bearer second-try 0
}

func ExampleUnavailable() {
	cred := azcredtest.NewScripted(azcredtest.Unavailable("no identity configured"))
	_, err := authHeader(context.Background(), cred)
	var unavailable *azcred.CredentialUnavailableError
	fmt.Println(errors.As(err, &unavailable))
	fmt.Println(err)
	// Output:
	// true
	// FakeCredential: no identity configured
}
