// Command blob uploads and downloads a blob with the Azure SDK's azblob
// client, authenticated by an azcred credential through azsdk.Credential.
//
// It runs offline: the local Entra ID emulator issues the tokens and a small
// fake blob endpoint on 127.0.0.1 checks them. Against real Azure, drop the
// emulator and the fake, build the credential with
// azcred.NewDefaultAzureCredential(nil), and pass
// "https://<account>.blob.core.windows.net/" and nil options to azblob.NewClient.
//
//	go run ./examples/blob
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/azsdk"
)

const (
	tenantID     = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID     = "11111111-2222-3333-4444-555555555555"
	clientSecret = "example-secret"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	e, err := emulator.New(nil)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.RegisterApp(emulator.App{TenantID: tenantID, ClientID: clientID, Secrets: []string{clientSecret}}); err != nil {
		return err
	}

	blobs := newFakeBlobEndpoint(e)
	defer blobs.Close()
	fmt.Println("emulator:     ", e.URL())
	fmt.Println("blob endpoint:", blobs.URL)

	cred, err := azcred.NewClientSecretCredential(tenantID, clientID, clientSecret, &azcred.ClientSecretCredentialOptions{
		ClientOptions: azcred.ClientOptions{AuthorityHost: e.URL(), Transport: e.Client()},
	})
	if err != nil {
		return err
	}
	client, err := azblob.NewClient(blobs.URL+"/", azsdk.Credential(cred), &azblob.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: blobs.Client()}, // trusts the fake's certificate
	})
	if err != nil {
		return err
	}

	if _, err := client.UploadBuffer(ctx, "greetings", "hello.txt", []byte("hello from azcred"), nil); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	res, err := client.DownloadStream(ctx, "greetings", "hello.txt", nil)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	fmt.Printf("downloaded:    %q\n", body)
	fmt.Println("token requests sent to the emulator:", len(e.Requests()))
	return nil
}

// newFakeBlobEndpoint serves PUT and GET of block blobs, in memory, to
// requests that carry a storage token issued by e.
func newFakeBlobEndpoint(e *emulator.Emulator) *httptest.Server {
	var mu sync.Mutex
	store := map[string][]byte{}
	return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := e.VerifyAccessToken(tok)
		if err != nil || claims["aud"] != "https://storage.azure.com" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			store[r.URL.Path] = b
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			b, ok := store[r.URL.Path]
			if !ok {
				w.Header().Set("x-ms-error-code", "BlobNotFound")
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("x-ms-blob-type", "BlockBlob")
			_, _ = w.Write(b)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
}
