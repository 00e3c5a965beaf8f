package skills

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/redis/go-redis/v9"
)

// Search reads the search index (searchEntries) with lexicographic range
// reads: the whole normalised label equal to the query, labels starting
// with it, and per word of the query the words equal to it and starting
// with it, each a bounded ZRANGE … BYLEX, all in one pipelined round trip.
// Only the skills those name are loaded and ranked; the taxonomy is never
// scanned.

// Match ranks, best first; a result's score is its rank / rankExact.
const (
	rankWordPrefix = 1 + iota // every query word starts a word of a label
	rankWord                  // every query word is a word of a label
	rankPrefix                // a label starts with the query
	rankExact                 // a label is the query
)

// Bounds of one search.
const (
	defaultSearchPage = 10
	// maxPerRange caps each range read: a one-letter query matches many
	// words, and a search is for finding a skill, not for listing them.
	maxPerRange = 1000
	// maxCandidates caps the skills one search loads and ranks.
	maxCandidates = 2000
	maxQueryWords = 8
)

// SearchSkills implements skillsv1.SkillsServiceServer.
func (s *Service) SearchSkills(ctx context.Context, req *skillsv1.SearchSkillsRequest) (*skillsv1.SearchSkillsResponse, error) {
	q := normalise(req.GetQuery())
	ws := words(q)
	if len(ws) == 0 {
		return nil, apierr.Field("query", "has no letters or digits to search for")
	}
	if len(ws) > maxQueryWords {
		return nil, apierr.Field("query", "has %d words; search with at most %d", len(ws), maxQueryWords)
	}
	scope := listing.Scope("SearchSkills", q, strconv.FormatBool(req.GetIncludeDeprecated()))
	cursor, err := s.tokens.Decode(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}
	offset := 0
	if len(cursor) == 1 {
		if offset, err = strconv.Atoi(cursor[0]); err != nil || offset < 0 {
			return nil, apierr.Field("page_token", "is not a page token of this search")
		}
	} else if len(cursor) != 0 {
		return nil, apierr.Field("page_token", "is not a page token of this search")
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultSearchPage
	}

	ranks, err := s.match(ctx, q, ws)
	if err != nil {
		return nil, err
	}
	// The best candidates when there are more than one search loads.
	ids := make([]string, 0, len(ranks))
	for id := range ranks {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Or(cmp.Compare(ranks[b], ranks[a]), cmp.Compare(a, b)) })
	ids = ids[:min(len(ids), maxCandidates)]
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = skillName(id)
	}
	found, err := s.loadSkills(ctx, names)
	if err != nil {
		return nil, err
	}
	type hit struct {
		skill *skillsv1.Skill
		rank  int
		label string
	}
	var hits []hit
	for _, n := range names {
		sk := found[n]
		if sk == nil || (sk.GetDeprecated() && !req.GetIncludeDeprecated()) {
			continue
		}
		hits = append(hits, hit{sk, ranks[skillID(n)], listing.TextKey(sk.GetPreferredLabel()["sv"])})
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.skill.GetDeprecated() != b.skill.GetDeprecated() {
			if a.skill.GetDeprecated() {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(b.rank, a.rank), cmp.Compare(a.label, b.label), cmp.Compare(a.skill.GetName(), b.skill.GetName()))
	})
	resp := &skillsv1.SearchSkillsResponse{}
	for i := offset; i < len(hits) && i < offset+size; i++ {
		resp.Results = append(resp.Results, &skillsv1.SearchResult{Skill: hits[i].skill, Score: float64(hits[i].rank) / rankExact})
	}
	if offset+size < len(hits) {
		resp.NextPageToken = s.tokens.Encode(scope, []string{strconv.Itoa(offset + size)})
	}
	return resp, nil
}

// match finds the skills whose labels match the normalised query q (of
// words ws), with each one's best rank, by skill id.
func (s *Service) match(ctx context.Context, q string, ws []string) (map[string]int, error) {
	type lookup struct {
		whole, prefix *redis.StringSliceCmd
	}
	rangeOf := func(p redis.Pipeliner, key, from, to string) *redis.StringSliceCmd {
		return p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, ByLex: true, Start: from, Stop: to, Count: maxPerRange})
	}
	var label lookup
	perWord := make([]lookup, len(ws))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		label.whole = rangeOf(p, searchLabelKey(), "["+q+searchSep, "["+q+searchSep+"\xff")
		label.prefix = rangeOf(p, searchLabelKey(), "["+q, "["+q+"\xff")
		for i, w := range ws {
			perWord[i].whole = rangeOf(p, searchWordKey(), "["+w+searchSep, "["+w+searchSep+"\xff")
			perWord[i].prefix = rangeOf(p, searchWordKey(), "["+w, "["+w+"\xff")
		}
		return nil
	})
	if err != nil {
		return nil, s.st.Err(ctx, err)
	}
	ids := func(c *redis.StringSliceCmd) map[string]bool {
		out := map[string]bool{}
		for _, m := range c.Val() {
			if i := strings.LastIndex(m, searchSep); i >= 0 {
				out[m[i+1:]] = true
			}
		}
		return out
	}
	ranks := map[string]int{}
	raise := func(set map[string]bool, rank int) {
		for id := range set {
			if ranks[id] < rank {
				ranks[id] = rank
			}
		}
	}
	raise(ids(label.whole), rankExact)
	raise(ids(label.prefix), rankPrefix)
	// Every word of the query must match, as a whole word or as the start
	// of one.
	whole, prefix := ids(perWord[0].whole), ids(perWord[0].prefix)
	for _, l := range perWord[1:] {
		whole, prefix = intersect(whole, ids(l.whole)), intersect(prefix, ids(l.prefix))
	}
	raise(whole, rankWord)
	raise(prefix, rankWordPrefix)
	return ranks, nil
}

func intersect(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		if b[k] {
			out[k] = true
		}
	}
	return out
}
