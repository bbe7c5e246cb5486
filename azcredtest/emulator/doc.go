// Package emulator is a local Microsoft Entra ID: an HTTPS server on
// 127.0.0.1 that speaks the token protocol closely enough for azcred, MSAL
// based clients such as azidentity, and programs in other languages to get
// real tokens from it without Azure.
//
// It serves, for every tenant added with [Emulator.AddTenant]:
//
//	GET  /<tenant>/v2.0/.well-known/openid-configuration   (issuer https://<host>/<tenant>/v2.0)
//	GET  /<tenant>/discovery/v2.0/keys                     (JWKS of the token signing key)
//	POST /<tenant>/oauth2/v2.0/token                       (client credentials, on-behalf-of,
//	                                                        password, refresh token,
//	                                                        authorization code + PKCE, device code)
//	GET  /<tenant>/oauth2/v2.0/authorize                   (auto-consent or a consent page;
//	                                                        query or form_post answers)
//	POST /<tenant>/oauth2/v2.0/devicecode                  (with a /devicelogin page and
//	                                                        [Emulator.ApproveDeviceCode])
//
// and the OpenID configuration of "common" and "organizations" with the
// "{tenantid}" issuer, as Entra does, and instance discovery
// (GET /common/discovery/instance) for the public and sovereign clouds'
// hosts and the emulator's own address.
//
// [Emulator.StartProxy] adds an HTTPS CONNECT proxy on loopback that answers
// the clouds' authority hosts ([AuthorityHosts]: login.microsoftonline.com,
// login.chinacloudapi.cn, ...) itself, with a certificate from the
// emulator's CA, so MSAL-based clients work with their default authority and
// instance discovery on; it refuses every other destination and never
// tunnels outward.
//
// The emulator is strict where Entra is strict: client secrets, certificate
// assertions (signature by the registered certificate, audience, lifetime with
// five minutes of skew, one use per jti), federated assertions (issuer,
// subject, audience, signature by a registered key), scopes (one resource per
// request, "/.default" for app tokens, known resources only), users'
// passwords, and on-behalf-of user assertions (issued by this emulator for the
// middle-tier app). Failures come back in Entra's JSON error shape with the
// AADSTS codes Entra uses. It is lenient where Entra is lenient: MSAL's
// reserved scopes (openid, offline_access, profile), client_info=1 and extra
// form fields such as x-client-SKU are accepted.
//
// Access tokens are RS256 JWTs signed by a key that the JWKS endpoint
// publishes ([Emulator.PublicKeys] and [Emulator.VerifyAccessToken] give it to
// tests directly).
//
// Every request is recorded ([Emulator.Requests]) with its parsed form, which
// includes client secrets and assertions: the emulator is a test tool and
// holds no real secret. Faults can be injected per endpoint
// ([Emulator.InjectFault]) or at random, at a rate
// ([Emulator.SetRandomFaults], [MIHost.SetRandomFaults]).
//
// Managed-identity hosts run on plain-http loopback listeners of their own
// (Service Fabric on https with a known thumbprint), started on demand:
// [Emulator.StartIMDS], StartAppService, StartServiceFabric, StartAzureML,
// StartCloudShell and StartArc; [MIHost.Env] gives the environment each host
// would set. Other fakes stand beside it: [KubernetesIssuer] mints projected
// service-account tokens for workload identity (with [ProjectedTokenFile]
// rotating them as the kubelet does), NewDevOpsOIDC is Azure DevOps' OIDC
// endpoint, and NewAKSProxy the AKS token proxy.
//
// An Emulator is safe for concurrent use. [Emulator.Close] stops the server
// and every goroutine it started.
package emulator
