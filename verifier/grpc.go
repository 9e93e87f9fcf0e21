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
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/structpb"
)

// Envoy's gRPC ext_authz (envoy.service.auth.v3.Authorization/Check): the
// same decision as the HTTP dialects, from the same store. The group is
// named per route by the check request's context extensions, which only
// the gateway's configuration sets, never a client.
const (
	ExtensionNamespace = "keyward.dev/namespace"
	ExtensionKeyGroup  = "keyward.dev/keygroup"
	// MetadataNamespace holds the facts of an allowed check in the
	// response's dynamic metadata, for Envoy's rate-limit filter and
	// access logs.
	MetadataNamespace = "keyward.dev"
)

// authHeaders are the headers an allowed check sets on the request sent
// upstream, as Envoy's header map names them.
var authHeaders = [...]string{"x-auth-key", "x-auth-application", "x-auth-scopes", "x-auth-namespace", "x-auth-external-id"}

// overrideHeadersLower are overrideHeaders as Envoy's header map names them.
var overrideHeadersLower = func() (out [len(overrideHeaders)]string) {
	for i, h := range overrideHeaders {
		out[i] = strings.ToLower(h)
	}
	return out
}()

// authorization serves Check from a Handler.
type authorization struct {
	authv3.UnimplementedAuthorizationServer
	h *Handler
}

// Check decides one request as Envoy describes it: method and path (with
// its query) from the HTTP attributes, the credential and method-override
// headers from its header map, the client from the source address.
func (a *authorization) Check(_ context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := a.h
	now := h.now()
	attrs := in.GetAttributes()
	ext := attrs.GetContextExtensions()
	req := Request{Namespace: ext[ExtensionNamespace], KeyGroup: ext[ExtensionKeyGroup]}
	if !dnsLabel(req.Namespace) || !dnsLabel(req.KeyGroup) {
		return noGroup, nil
	}
	hr := attrs.GetRequest().GetHttp()
	hdr := hr.GetHeaders()
	req.Method, req.URI = hr.GetMethod(), hr.GetPath()
	if v, ok := hdr["authorization"]; ok {
		req.Authorization = []string{v}
	}
	if v, ok := hdr["x-api-key"]; ok {
		req.XAPIKey = []string{v}
	}
	for i, name := range overrideHeadersLower {
		if v, ok := hdr[name]; ok {
			req.stated.overrides[i] = []string{v}
		}
	}
	// Envoy has judged the client address already (its own
	// use_remote_address and xff_num_trusted_hops): the source is it.
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		req.Client, _ = netip.ParseAddr(sa.GetAddress())
	}
	d := h.verify(&req, now)
	resp := checkResponse(&req, d, hdr)
	h.store.metrics.observe(d.group, d.Reason, time.Since(now))
	return resp, nil
}

// noGroup answers a check whose route names no valid group: 404, as the
// HTTP dialects answer an unknown URL.
var noGroup = &authv3.CheckResponse{
	Status: &rpcstatus.Status{Code: int32(codes.NotFound), Message: "the route names no KeyGroup: set the context extensions " + ExtensionNamespace + " and " + ExtensionKeyGroup},
	HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_NotFound},
	}},
}

func header(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}}
}

// checkResponse is the answer to a check: OK with the X-Auth-* headers and
// the facts as dynamic metadata, every client-sent x-auth-* header not set
// here removed; or the refusal of the HTTP dialects.
func checkResponse(req *Request, d Decision, hdr map[string]string) *authv3.CheckResponse {
	if d.Reason != ReasonOK {
		a := answers[d.Reason]
		code := codes.PermissionDenied
		headers := []*corev3.HeaderValueOption{
			header("x-auth-reason", a.header[0]), header("content-type", jsonType[0]), header("cache-control", noStore[0]),
		}
		if a.status == 401 {
			code = codes.Unauthenticated
			realm := `Bearer realm="` + req.Namespace + "/" + req.KeyGroup + `"`
			if d.group != nil {
				realm = d.group.realm[0]
			}
			headers = append(headers, header("www-authenticate", realm))
		}
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(code)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode(a.status)}, // #nosec G115 -- an HTTP status
				Headers: headers,
				Body:    string(a.body),
			}},
		}
	}
	e := d.entry
	p := e.profile
	values := [len(authHeaders)]string{e.keyID[0], p.headerApp[0], p.headerScope[0], p.headerNS[0], first([][]string{p.headerExtID})}
	ok := &authv3.OkHttpResponse{}
	for i, name := range authHeaders {
		if values[i] == "" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
			continue
		}
		ok.Headers = append(ok.Headers, header(name, values[i]))
	}
	for name := range hdr {
		if strings.HasPrefix(name, "x-auth-") && !slices.Contains(authHeaders[:], name) {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
		}
	}
	meta, _ := structpb.NewStruct(map[string]any{MetadataNamespace: map[string]any{
		"key_id": values[0], "application": values[1], "scopes": values[2], "namespace": values[3],
		"key_group": req.KeyGroup, "external_id": values[4],
	}})
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: meta,
	}
}

// grpcServer serves Check, health and reflection on one listener, h2c. A
// nil *grpcServer is a verifier without gRPC: its methods do nothing.
type grpcServer struct {
	ln     net.Listener
	srv    *grpc.Server
	health *health.Server
	s      *Server
}

func newGRPCServer(addr string, s *Server) (*grpcServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--grpc-listen: %w", err)
	}
	g := &grpcServer{ln: ln, srv: grpc.NewServer(), health: health.NewServer(), s: s}
	authv3.RegisterAuthorizationServer(g.srv, &authorization{h: s.Handler})
	healthpb.RegisterHealthServer(g.srv, g.health)
	reflection.Register(g.srv)
	g.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	g.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	return g, nil
}

func (g *grpcServer) addr() string { return g.ln.Addr().String() }

// serve answers until stopped; health says SERVING once the store has
// synced, as /readyz does.
func (g *grpcServer) serve(ctx context.Context) {
	if g == nil {
		return
	}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if g.s.Ready() {
				g.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
				g.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	_ = g.srv.Serve(g.ln)
}

// notServing is the first step of a graceful stop: load balancers and
// gateways that watch health stop sending.
func (g *grpcServer) notServing() {
	if g != nil {
		g.health.Shutdown()
	}
}

// stop lets the checks in flight finish, until ctx ends.
func (g *grpcServer) stop(ctx context.Context) {
	if g == nil {
		return
	}
	done := make(chan struct{})
	go func() { g.srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.srv.Stop()
	}
}
