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
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/keyward/keyward/internal/dev"
)

// Dev is "keyward dev": a local control plane with everything running,
// until Ctrl-C.
func Dev(args []string) int {
	fs := flag.NewFlagSet("keyward dev", flag.ContinueOnError)
	o := dev.Options{Out: os.Stdout}
	noSamples := false
	fs.StringVar(&o.Dir, "dir", "bin/dev", "Directory for the kubeconfig and the control plane's data.")
	fs.StringVar(&o.VerifierListen, "verifier-listen", "127.0.0.1:18080", "Address of the verifier.")
	fs.StringVar(&o.VerifierGRPCListen, "verifier-grpc-listen", "127.0.0.1:19001", "Address of the verifier's gRPC ext_authz Check; empty: not served.")
	fs.BoolVar(&noSamples, "no-samples", false, "Do not apply config/samples.")
	fs.BoolVar(&o.Verbose, "v", false, "Show the manager's and the verifier's logs.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	o.Samples = !noSamples
	ctx := ctrl.SetupSignalHandler()
	if err := dev.Run(ctx, o, nil); err != nil {
		fmt.Fprintln(os.Stderr, "keyward dev:", err)
		return 1
	}
	return 0
}
