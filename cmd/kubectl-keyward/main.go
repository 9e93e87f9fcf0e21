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

// Command kubectl-keyward is keyward's kubectl plugin, "kubectl keyward":
// the hands of an operator for what YAML does badly. It reads a new key
// once (get-key), rotates (rotate) and revokes (revoke) keys, identifies a
// leaked key from its plaintext (identify, revoke --key -) and lists keys
// that expire soon (expiring) or that nobody uses (unused).
//
// A leaked key's plaintext is read from stdin, checked against its checksum
// and hashed here: only its SHA-256 digest is compared with the hashed
// Secrets read from the operator's namespace, and the plaintext is sent
// nowhere. Plaintext never appears in an error or a message; get-key prints
// it, once, because that is what it is asked for.
package main

import (
	"fmt"
	"os"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := newRootCommand(streams, time.Now).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
