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

// Command keyward is the one keyward binary. Each component is a
// subcommand: "keyward manager" runs the controllers and webhooks,
// "keyward verifier" answers ingress external-auth calls, and "keyward dev"
// runs everything against a local control plane.
package main

import (
	"fmt"
	"os"
	"sort"

	_ "golang.org/x/crypto/x509roots/fallback" // public CA roots, for an image without a bundle

	"github.com/keyward/keyward/internal/cmd"
)

// command is one subcommand: a one-line summary and its entry point, which
// parses its own flags from args and returns the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

// commands lists the subcommands that exist today.
var commands = map[string]command{}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "keyward: unknown command %q\n", args[0])
		usage()
		return 2
	}
	return cmd.run(args[1:])
}

func usage() {
	fmt.Fprintln(os.Stderr, "Usage: keyward <command> [flags]")
	fmt.Fprintln(os.Stderr)
	fmt.Fprintln(os.Stderr, "Commands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(os.Stderr)
	fmt.Fprintln(os.Stderr, "Run 'keyward <command> --help' for a command's flags.")
}

func init() {
	commands["manager"] = command{"run the controllers and the admission webhooks", cmd.Manager}
	commands["verifier"] = command{"answer ingress external-auth calls from memory", cmd.Verifier}
	commands["dev"] = command{"run everything against a local control plane, with the samples applied", cmd.Dev}
}
