/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package verifier

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward/test/testgen"
)

// grpcCheck is one case of the table both transports answer: Envoy's gRPC
// Check (the group named by context extensions) and the HTTP Envoy dialect
// (the group in the path prefix).
type grpcCheck struct {
	name             string
	namespace, group string
	method, path     string
	headers          map[string]string // lower-case, as Envoy's header map
	source           string
	status           int
	reason           string
}

// serveGRPC serves f's handler over gRPC on a loopback socket until the
// test ends.
func serveGRPC(t *testing.T, f *fixture) *grpcServer {
	t.Helper()
	s := &Server{Store: f.store, Handler: f.handler}
	g, err := newGRPCServer("127.0.0.1:0", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go g.serve(ctx)
	t.Cleanup(func() { cancel(); g.stop(context.Background()) })
	return g
}

// startGRPC serves f's handler over gRPC and returns a connected client.
func startGRPC(t *testing.T, f *fixture) (authv3.AuthorizationClient, healthpb.HealthClient) {
	t.Helper()
	g := serveGRPC(t, f)
	conn, err := grpc.NewClient(g.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv3.NewAuthorizationClient(conn), healthpb.NewHealthClient(conn)
}

func checkRequest(c grpcCheck) *authv3.CheckRequest {
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: map[string]string{},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: c.method, Path: c.path, Host: "api.example.com", Headers: c.headers,
		}},
	}}
	if c.namespace != "" {
		req.Attributes.ContextExtensions[ExtensionNamespace] = c.namespace
	}
	if c.group != "" {
		req.Attributes.ContextExtensions[ExtensionKeyGroup] = c.group
	}
	if c.source != "" {
		req.Attributes.Source = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: c.source, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}}
	}
	return req
}

func responseHeaders(opts []*corev3.HeaderValueOption) map[string]string {
	out := map[string]string{}
	for _, o := range opts {
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return out
}

// TestGRPCCheck runs one table through a real gRPC client over a real
// socket and through the HTTP Envoy dialect: every reason of DESIGN §4,
// tenant isolation, the group chosen by context extensions, forged
// x-auth-* headers removed, dynamic metadata present; and the two
// transports decide alike.
func TestGRPCCheck(t *testing.T) {
	f := newFixture(t)
	client, healthClient := startGRPC(t, f)
	bearer := func(name string, more ...string) map[string]string {
		h := map[string]string{"authorization": "Bearer " + f.keys[name]}
		for i := 0; i+1 < len(more); i += 2 {
			h[more[i]] = more[i+1]
		}
		return h
	}
	malformed := testgen.BadChecksum(f.keys["downlinker"])
	tests := []grpcCheck{
		{name: "allowed", namespace: "iot", group: "devices", method: "POST", path: "/integration/device/sendmsg", headers: bearer("downlinker"), status: 200},
		{name: "allowed, query ignored", namespace: "iot", group: "devices", method: "POST", path: "/integration/device/sendmsg?x=/admin", headers: bearer("downlinker"), status: 200},
		{name: "X-API-Key", namespace: "iot", group: "devices", method: "GET", path: "/status", headers: map[string]string{"x-api-key": f.keys["downlinker"]}, status: 200},
		{name: "missing", namespace: "iot", group: "devices", method: "GET", path: "/status", headers: map[string]string{}, status: 401, reason: "missing"},
		{name: "malformed", namespace: "iot", group: "devices", method: "GET", path: "/status", headers: map[string]string{"authorization": "Bearer " + malformed}, status: 401, reason: "malformed"},
		{name: "two different credentials", namespace: "iot", group: "devices", method: "GET", path: "/status", headers: bearer("downlinker", "x-api-key", f.keys["full"]), status: 401, reason: "malformed"},
		{name: "unknown: another namespace's group of the same name", namespace: "billing", group: "devices", method: "GET", path: "/status", headers: bearer("downlinker"), status: 401, reason: "unknown"},
		{name: "unknown: another group's key", namespace: "billing", group: "devices", method: "GET", path: "/read", headers: bearer("full"), status: 401, reason: "unknown"},
		{name: "expired", namespace: "iot", group: "devices", method: "GET", path: "/status", headers: bearer("past-expiry"), status: 401, reason: "expired"},
		{name: "revoked", namespace: "iot", group: "devices", method: "GET", path: "/status", headers: bearer("revoked"), status: 401, reason: "revoked"},
		{name: "disabled", namespace: "iot", group: "devices", method: "GET", path: "/status", headers: bearer("disabled"), status: 401, reason: "disabled"},
		{name: "scope: method", namespace: "iot", group: "devices", method: "GET", path: "/integration/device/sendmsg", headers: bearer("downlinker"), status: 403, reason: "scope"},
		{name: "scope: path", namespace: "iot", group: "devices", method: "POST", path: "/admin", headers: bearer("downlinker"), status: 403, reason: "scope"},
		{name: "source", namespace: "iot", group: "ranged", method: "GET", path: "/v1/things/1", headers: bearer("own-range"), source: "198.51.100.7", status: 403, reason: "source"},
		{name: "source allowed", namespace: "iot", group: "ranged", method: "GET", path: "/v1/things/1", headers: bearer("own-range"), source: "203.0.113.9", status: 200},
		{name: "path: encoded slash", namespace: "iot", group: "devices", method: "POST", path: "/integration/device/a%2F..%2F..%2Fadmin", headers: bearer("full"), status: 403, reason: "path"},
		{name: "path: double encoding", namespace: "iot", group: "devices", method: "POST", path: "/integration/device/%252e%252e/admin", headers: bearer("full"), status: 403, reason: "path"},
		{name: "path: method override", namespace: "iot", group: "devices", method: "POST", path: "/integration/device/sendmsg", headers: bearer("downlinker", "x-http-method-override", "DELETE"), status: 403, reason: "path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(context.Background(), checkRequest(tt))
			if err != nil {
				t.Fatal(err)
			}
			var status int
			var headers map[string]string
			switch r := resp.GetHttpResponse().(type) {
			case *authv3.CheckResponse_OkResponse:
				status, headers = 200, responseHeaders(r.OkResponse.GetHeaders())
				if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
					t.Errorf("gRPC status %d on an allowed check", resp.GetStatus().GetCode())
				}
				meta := resp.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
				if meta["key_id"].GetStringValue() != headers["x-auth-key"] || meta["namespace"].GetStringValue() != tt.namespace || meta["key_group"].GetStringValue() != tt.group {
					t.Errorf("dynamic metadata %v, want the key, namespace and group", meta)
				}
			case *authv3.CheckResponse_DeniedResponse:
				status, headers = int(r.DeniedResponse.GetStatus().GetCode()), responseHeaders(r.DeniedResponse.GetHeaders())
				if !strings.Contains(r.DeniedResponse.GetBody(), `"reason":"`+tt.reason+`"`) {
					t.Errorf("body %q", r.DeniedResponse.GetBody())
				}
				if status == 401 && headers["www-authenticate"] != `Bearer realm="`+tt.namespace+"/"+tt.group+`"` {
					t.Errorf("www-authenticate %q", headers["www-authenticate"])
				}
			}
			if status != tt.status || headers["x-auth-reason"] != tt.reason {
				t.Errorf("gRPC: %d %q, want %d %q", status, headers["x-auth-reason"], tt.status, tt.reason)
			}
			if tt.source != "" {
				return // the HTTP dialect takes the client from the connection, not from the check
			}
			// The same case through the HTTP Envoy dialect.
			r := httptest.NewRequest(tt.method, "/v1/envoy/"+tt.namespace+"/"+tt.group+tt.path, nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			f.handler.ServeHTTP(w, r)
			if w.Code != tt.status || w.Header().Get("X-Auth-Reason") != tt.reason {
				t.Errorf("HTTP Envoy dialect: %d %q, gRPC: %d %q: the transports disagree", w.Code, w.Header().Get("X-Auth-Reason"), status, tt.reason)
			}
		})
	}

	t.Run("the group comes from context extensions only", func(t *testing.T) {
		c := grpcCheck{method: "GET", path: "/status", headers: bearer("downlinker", "x-keyward-namespace", "iot")}
		resp, err := client.Check(context.Background(), checkRequest(c))
		if err != nil {
			t.Fatal(err)
		}
		if codes.Code(resp.GetStatus().GetCode()) != codes.NotFound || resp.GetDeniedResponse().GetStatus().GetCode() != http.StatusNotFound {
			t.Errorf("a check without context extensions got %v", resp.GetStatus())
		}
	})

	t.Run("forged x-auth headers are removed", func(t *testing.T) {
		c := grpcCheck{namespace: "iot", group: "devices", method: "GET", path: "/status",
			headers: bearer("downlinker", "x-auth-application", "forged", "x-auth-role", "admin", "x-auth-external-id", "CUST-0")}
		resp, err := client.Check(context.Background(), checkRequest(c))
		if err != nil {
			t.Fatal(err)
		}
		ok := resp.GetOkResponse()
		set := responseHeaders(ok.GetHeaders())
		if set["x-auth-application"] != "acme" || set["x-auth-external-id"] != "70B3D57ED0001234" {
			t.Errorf("x-auth headers set %v", set)
		}
		for _, h := range ok.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("%s is set with %s: a client's forged value would reach the upstream beside it", h.GetHeader().GetKey(), h.GetAppendAction())
			}
		}
		removed := strings.Join(ok.GetHeadersToRemove(), ",")
		if !strings.Contains(removed, "x-auth-role") {
			t.Errorf("the client's x-auth-role is not removed (removed: %q)", removed)
		}
	})

	t.Run("health serves once synced", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			r, err := healthClient.Check(ctx, &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
			if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("health never SERVING: %v %v", r, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// TestGRPCUnavailableUntilSynced: before its caches have synced the
// verifier answers no check, as the HTTP dialects answer 503: Envoy then
// applies status_on_error rather than passing on "401 unknown" for a valid
// key.
func TestGRPCUnavailableUntilSynced(t *testing.T) {
	f := newFixture(t)
	f.store.keysSynced.Store(false)
	client, _ := startGRPC(t, f)
	c := grpcCheck{namespace: "iot", group: "devices", method: "GET", path: "/status",
		headers: map[string]string{"authorization": "Bearer " + f.keys["downlinker"]}}
	_, err := client.Check(context.Background(), checkRequest(c))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("a check before the keys synced: %v, want Unavailable", err)
	}
	f.store.keysSynced.Store(true)
	resp, err := client.Check(context.Background(), checkRequest(c))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("the same check once synced: %v %v, want OK", resp, err)
	}
}

// TestGRPCHeaderMap: an Envoy with encode_raw_headers sends the headers
// in header_map, one entry per line, and headers empty. They are read as
// the headers are: the key allowed, forged x-auth-* removed, two lines of
// a credential or an override refused as two lines joined by Envoy are.
func TestGRPCHeaderMap(t *testing.T) {
	f := newFixture(t)
	client, _ := startGRPC(t, f)
	type line struct {
		key, value string
		raw        []byte
	}
	key := f.keys["downlinker"]
	check := func(t *testing.T, headers map[string]string, lines ...line) *authv3.CheckResponse {
		t.Helper()
		req := checkRequest(grpcCheck{namespace: "iot", group: "devices", method: "POST", path: "/integration/device/sendmsg", headers: headers})
		hm := &corev3.HeaderMap{}
		for _, l := range lines {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: l.key, Value: l.value, RawValue: l.raw})
		}
		req.Attributes.Request.Http.HeaderMap = hm
		resp, err := client.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	refused := func(t *testing.T, resp *authv3.CheckResponse, status int, reason string) {
		t.Helper()
		d := resp.GetDeniedResponse()
		if got := int(d.GetStatus().GetCode()); got != status || responseHeaders(d.GetHeaders())["x-auth-reason"] != reason {
			t.Errorf("%d %v, want %d %s", got, responseHeaders(d.GetHeaders()), status, reason)
		}
	}

	t.Run("allowed from raw values, forged x-auth removed", func(t *testing.T) {
		resp := check(t, nil, line{key: "authorization", raw: []byte("Bearer " + key)}, line{key: "x-auth-role", raw: []byte("admin")})
		ok := resp.GetOkResponse()
		if ok == nil {
			t.Fatalf("refused: %v", resp.GetDeniedResponse())
		}
		if removed := strings.Join(ok.GetHeadersToRemove(), ","); !strings.Contains(removed, "x-auth-role") {
			t.Errorf("the client's x-auth-role is not removed (removed: %q)", removed)
		}
	})
	t.Run("allowed from values", func(t *testing.T) {
		if resp := check(t, nil, line{key: "x-api-key", value: key}); resp.GetOkResponse() == nil {
			t.Errorf("refused: %v", resp.GetDeniedResponse())
		}
	})
	t.Run("two lines of one credential", func(t *testing.T) {
		refused(t, check(t, nil, line{key: "x-api-key", raw: []byte(key)}, line{key: "x-api-key", raw: []byte(f.keys["full"])}), 401, "malformed")
	})
	t.Run("a value and a raw value that differ", func(t *testing.T) {
		refused(t, check(t, nil, line{key: "x-api-key", value: key, raw: []byte(f.keys["full"])}), 401, "malformed")
	})
	t.Run("a credential in headers and another in header_map", func(t *testing.T) {
		refused(t, check(t, map[string]string{"x-api-key": key}, line{key: "x-api-key", raw: []byte(f.keys["full"])}), 401, "malformed")
	})
	t.Run("an override naming another method", func(t *testing.T) {
		refused(t, check(t, nil, line{key: "authorization", raw: []byte("Bearer " + key)}, line{key: "x-http-method-override", raw: []byte("DELETE")}), 403, "path")
	})
	t.Run("two override lines that disagree", func(t *testing.T) {
		refused(t, check(t, nil, line{key: "authorization", raw: []byte("Bearer " + key)},
			line{key: "x-http-method-override", raw: []byte("POST")}, line{key: "x-http-method-override", raw: []byte("DELETE")}), 403, "path")
	})
}

// TestGRPCIdleConnectionClosed: a connection that carries no check is
// closed after grpcIdleTimeout, as the HTTP listener closes an idle one;
// nobody can hold connections open for nothing.
func TestGRPCIdleConnectionClosed(t *testing.T) {
	defer func(d time.Duration) { grpcIdleTimeout = d }(grpcIdleTimeout)
	grpcIdleTimeout = 300 * time.Millisecond
	g := serveGRPC(t, newFixture(t))
	conn, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The client preface and an empty SETTINGS frame: a connection
	// established, then nothing.
	if _, err := conn.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("the idle connection was not closed: %v", err)
	}
}
