// Package azidentity is a drop-in replacement for the Azure SDK for Go's
// github.com/Azure/azure-sdk-for-go/sdk/azidentity (v1.15.0), built on
// azcred. Change the import path and keep every line of code: every
// exported identifier of azidentity is here with the same signature, taking
// and returning the same azcore, policy and cloud types, so every Azure SDK
// client accepts these credentials.
//
//	grep -rl --include='*.go' sdk/azidentity . | xargs sed -i 's#github.com/Azure/azure-sdk-for-go/sdk/azidentity#github.com/azcred/azcred/azsdk/azidentity#'
//
// Each credential is a face over the azcred credential of the same name:
// azcred does the OAuth 2.0 and managed-identity protocols (no MSAL), the
// caching and the refreshing; this package converts options, tokens and
// errors at the boundary.
//
// # What stays the same
//
// Constructors, options, defaults and environment variables are
// azidentity's (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
// AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE,
// AZURE_AUTHORITY_HOST, AZURE_ADDITIONALLY_ALLOWED_TENANTS,
// AZURE_TOKEN_CREDENTIALS, the managed-identity hosts' variables, ...).
// azcore's ClientOptions are honoured: every HTTP request of a credential
// goes through an azcore pipeline built from them — Transport, Retry
// (MaxRetries, delays, TryTimeout, StatusCodes, ShouldRetry; azcred's own
// retries are off), PerCallPolicies and PerRetryPolicies, Logging (azcore's
// request, response and retry log events), Telemetry (the User-Agent),
// TracingProvider (a span around each GetToken and Authenticate, and
// azcore's spans around each HTTP request) and Cloud. Managed identity's
// IMDS requests take azidentity's retry defaults for the Retry fields left
// zero. Messages of the [EventAuthentication] log event say which credential
// handed out a token for which scopes and which source a chain used.
//
// Errors keep azidentity's classes: [AuthenticationFailedError] (with a
// RawResponse whose body, read through azcore's runtime.Payload, has every
// secret and token removed), [AuthenticationRequiredError], and the
// unavailable error of [NewCredentialUnavailableError]. errors.As also
// finds azcred's error underneath, with its status code, Entra ID error code
// and correlation ID.
//
// # What is better
//
//   - Tokens are cached by azcred's engine: a cached GetToken takes no lock
//     and allocates nothing; a token due for refresh is refreshed in the
//     background while callers keep the current one; a thousand callers at
//     expiry cause one request.
//   - A confidential client's first token takes one request (azidentity
//     first sends an instance or OpenID discovery request).
//   - The developer tools' tokens (Azure CLI, azd, Azure PowerShell) are
//     cached too, so the tool runs about once per scope per token lifetime.
//   - DefaultAzureCredential decides its sources concurrently where that
//     cannot change the answer, and a source whose configuration is present
//     but broken stops the chain (a later source would authenticate as
//     someone else).
//   - With no transport of the caller's, the default transport refuses
//     redirects (a token request is never re-sent to another host), and
//     IMDS and Azure Arc requests bypass the environment's proxy.
//   - PKCS#12 files of any modern encryption load in [ParseCertificates].
//   - Credentials print redacted (String, GoString).
//
// # What differs, and why
//
//   - DisableInstanceDiscovery has no effect: no discovery requests are
//     ever sent.
//   - [Cache] persists tokens through azcred's encrypted file store (see the
//     cache package), not MSAL's cache format, so it does not share tokens
//     with programs using the real azidentity. UsernamePasswordCredential
//     accepts a Cache but keeps its tokens in memory, since azcred gives it
//     no persistent store; it ignores its
//     AuthenticationRecord option for the same reason (it always signs in
//     with its password), and its Authenticate builds the record from the
//     claims of the access token it got.
//   - Service Fabric's managed identity pins its endpoint's certificate, so
//     its requests go directly over the caller's *http.Client (or a default
//     one) instead of through the pipeline: policies, retries and logging do
//     not apply there.
//   - ClientOptions.InsecureAllowCredentialWithHTTP has no effect on token
//     requests, as in azidentity: authority hosts must use https (the
//     managed-identity endpoints on the host itself are plain http, as they
//     are in production). It matters to the SDK clients' bearer policy only.
//   - Inside this package's ChainedTokenCredential and
//     DefaultAzureCredential, the sources' azcred credentials are called
//     directly: the chain's EventAuthentication message names the source
//     that worked, but the sources' own GetToken spans and messages are not
//     emitted (their HTTP requests still take the pipeline).
//   - azcore offers no public way to write to its log listener, so this
//     package reaches the SDK's internal log writer by symbol name
//     (go:linkname); a test checks that the messages arrive.
//   - Error messages differ in wording (they say what to do), never in
//     class, with one exception: once a ChainedTokenCredential (without
//     RetrySources) or DefaultAzureCredential keeps using a source, that
//     source's later errors come wrapped in the chain's error (listing the
//     attempt) instead of unchanged, so a plain error of the source (a
//     malformed request) arrives as the chain's AuthenticationFailedError.
//   - Constructors check arguments more strictly: an empty client ID, or a
//     tenant ID that starts with '-' or is "." or "..", fails at
//     construction; azidentity accepts them and fails later (or passes the
//     tenant to a developer tool's command line).
//   - AZURE_IDENTITY_DISABLE_MULTITENANTAUTH, which azidentity (Go) does
//     not read, makes every credential ignore a request's TenantID, as it
//     does in the other Azure SDKs.
//
// # Mixing with the real azidentity
//
// This package's credentials work anywhere an azcore.TokenCredential does,
// including inside the real azidentity's ChainedTokenCredential. That chain,
// however, recognises "unavailable" only by its own unexported error type:
// inside it, an unavailable credential of this package stops the chain as a
// failure instead of letting it try the next source. Build chains with this
// package's [NewChainedTokenCredential], which treats its own, azcred's and
// azidentity's unavailable errors as unavailable, and accepts the real
// azidentity's credentials as sources.
package azidentity
