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

package cmd

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/verifier"
)

// Verifier is "keyward verifier": it parses flags and serves until SIGTERM.
func Verifier(args []string) int {
	fs := flag.NewFlagSet("keyward verifier", flag.ContinueOnError)
	var (
		o           verifier.Options
		kubeconfig  string
		trusted     string
		leaderElect bool
	)
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Default: $KUBECONFIG, the in-cluster config, then ~/.kube/config.")
	fs.StringVar(&o.Namespace, "namespace", kube.DefaultNamespace, "The operator's namespace, whose hashed Secrets the verifier reads (and no other).")
	fs.StringVar(&o.Listen, "listen", ":8080", "Address of the verification endpoints /v1/verify/... and /v1/envoy/....")
	fs.StringVar(&o.GRPCListen, "grpc-listen", ":9001", "Address of Envoy's gRPC ext_authz Check (h2c), with gRPC health and reflection; empty: not served.")
	fs.StringVar(&o.GRPCTLSCertFile, "grpc-tls-cert-file", "", "Serve gRPC over TLS with this certificate (PEM), read again when it changes, as cert-manager renews a mounted Secret; with --grpc-tls-key-file. Default: h2c.")
	fs.StringVar(&o.GRPCTLSKeyFile, "grpc-tls-key-file", "", "The private key (PEM) of --grpc-tls-cert-file.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of /healthz, /readyz and /metrics.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", "", "Also serve /metrics on this address. Default: only on the probe address.")
	fs.StringVar(&trusted, "trusted-proxies", "", "Comma-separated CIDRs of the proxies whose X-Real-IP and X-Forwarded-For are believed, such as the ingress controller's pod network.")
	fs.Func("key-groups", "Comma-separated KeyGroups (<namespace>/<name>) whose keys this verifier holds, selected at the API server: one shard of several verifier Deployments. Default: every group's.", func(v string) error {
		// Given twice, one list would silently replace the other.
		if o.KeyGroups != nil {
			return errors.New("given more than once: list every KeyGroup of this verifier in one --key-groups, comma-separated")
		}
		o.KeyGroups = strings.Split(v, ",")
		return nil
	})
	fs.DurationVar(&o.LastUsedInterval, "last-used-interval", time.Minute, "Least time between two writes of one key's status.lastUsedTime; negative disables them.")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", 5*time.Second, "How long to report not-ready before stopping on SIGTERM.")
	fs.BoolVar(&leaderElect, "leader-elect", false, "Accepted for symmetry with the manager; it has no effect: every verifier replica serves.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if trusted != "" {
		o.TrustedProxies = strings.Split(trusted, ",")
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	o.Log = ctrl.Log.WithName("verifier")
	if leaderElect {
		o.Log.Info("--leader-elect has no effect on the verifier: every replica serves")
	}
	cfg, err := kube.LoadConfig(kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyward verifier:", err)
		return 1
	}
	ctx := ctrl.SetupSignalHandler()
	s, err := verifier.Start(ctx, cfg, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyward verifier:", err)
		return 1
	}
	if err := s.Wait(); err != nil {
		o.Log.Error(err, "Verifier stopped")
		return 1
	}
	return 0
}
