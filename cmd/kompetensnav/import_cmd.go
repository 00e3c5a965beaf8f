package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

const importUsage = `usage: kompetensnav import-skills [flags] FILE

Imports a skills taxonomy file into a running Kompetensnav over gRPC
(-grpc, KN_GRPC) with a staff key (-key, KN_KEY). The file is JSON as
ImportSkills takes it: {"skills": [{"name": "skills/…", "preferredLabel":
{"sv": "…", "en": "…"}, "broader": "skills/…"}, …]}; the demo taxonomy is
services/skills/demotaxonomy/taxonomy.json. Up to -batch skills go in one
call, which is all or nothing and one taxonomy version; a larger file is
several calls, broader skills before narrower ones. Importing a file
again changes nothing.

flags:
`

// importSkillsCommand runs "kompetensnav import-skills …" and returns the
// exit status.
func importSkillsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kompetensnav import-skills", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	addr := config.String(fs, "grpc", "127.0.0.1:9090", "gRPC address of Kompetensnav (or of the skills service)")
	key := config.String(fs, "key", "", "a staff key: the bootstrap key the all-in-one printed, or a staff API key")
	ca := config.String(fs, "grpc-tls-ca", "", "verify a TLS gRPC server with this PEM CA file, or system; empty: plaintext")
	batch := fs.Int("batch", skills.MaxImport, "skills per call (at most 5000)")
	if err := config.Parse(fs, args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *batch < 1 || *batch > skills.MaxImport {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "kompetensnav import-skills:", err)
		return 1
	}
	if *key == "" {
		return fail(fmt.Errorf("no key: set -key or KN_KEY (the all-in-one prints one at start)"))
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fail(err)
	}
	file := &skillsv1.ImportSkillsRequest{}
	if err := protojson.Unmarshal(b, file); err != nil {
		return fail(fmt.Errorf("%s is not a taxonomy file ({\"skills\": [...]}): %v", fs.Arg(0), err))
	}
	if len(file.GetSkills()) == 0 {
		return fail(fmt.Errorf("%s has no skills", fs.Arg(0)))
	}
	creds, err := tlsx.Client(*ca)
	if err != nil {
		return fail(err)
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(auth.Bearer(*key)))
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	client := skillsv1.NewSkillsServiceClient(conn)

	entries := parentsFirst(file.GetSkills())
	batches := (len(entries) + *batch - 1) / *batch
	var total skillsv1.ImportSkillsResponse
	for i := 0; i < batches; i++ {
		part := entries[i**batch : min((i+1)**batch, len(entries))]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		resp, err := client.ImportSkills(ctx, &skillsv1.ImportSkillsRequest{Skills: part})
		cancel()
		if err != nil {
			fmt.Fprintf(stdout, "batch %d/%d (%d skills): refused, nothing of it written\n", i+1, batches, len(part))
			return fail(err)
		}
		fmt.Fprintf(stdout, "batch %d/%d (%d skills): %d created, %d updated, %d unchanged; taxonomy version %d\n",
			i+1, batches, len(part), resp.GetCreated(), resp.GetUpdated(), resp.GetUnchanged(), resp.GetVersion())
		total.Created += resp.GetCreated()
		total.Updated += resp.GetUpdated()
		total.Unchanged += resp.GetUnchanged()
		total.Version = resp.GetVersion()
	}
	fmt.Fprintf(stdout, "imported %d skills from %s: %d created, %d updated, %d unchanged; taxonomy version %d\n",
		len(entries), fs.Arg(0), total.Created, total.Updated, total.Unchanged, total.Version)
	return 0
}

// parentsFirst orders entries so that every broader skill and successor
// the file holds comes before the entries naming it (otherwise in file
// order), so that no batch names a skill a later batch creates.
func parentsFirst(entries []*skillsv1.Skill) []*skillsv1.Skill {
	byName := make(map[string]*skillsv1.Skill, len(entries))
	for _, e := range entries {
		byName[e.GetName()] = e
	}
	out := make([]*skillsv1.Skill, 0, len(entries))
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(e *skillsv1.Skill)
	visit = func(e *skillsv1.Skill) {
		if state[e.GetName()] != 0 {
			return // done, or a cycle the service will refuse
		}
		state[e.GetName()] = 1
		for _, ref := range []string{e.GetBroader(), e.GetReplacedBy()} {
			if p, ok := byName[ref]; ok {
				visit(p)
			}
		}
		state[e.GetName()] = 2
		out = append(out, e)
	}
	for _, e := range entries {
		visit(e)
	}
	return out
}
