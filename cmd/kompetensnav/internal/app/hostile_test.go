package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The hostile-input table: requests a careless, broken or malicious client
// sends, over REST and over gRPC, to every write and list RPC. Each must get
// a precise 4xx naming what is wrong, say nothing of the inside, and write
// nothing. A new service adds its rows to hostileREST and hostileGRPC.

// hostileHTTP is one REST request and what it must answer.
type hostileHTTP struct {
	name, method, path string
	body               string
	contentType        string            // default application/json
	header             map[string]string // extra headers
	status             int
	field              string // the BadRequest field (JSON path); "" when none is expected
}

var hostileREST = []hostileHTTP{
	// Text that is not UTF-8, anywhere in the URL.
	{name: "path not UTF-8", method: "GET", path: "/v1/councils/fordon%ff", status: 400, field: "name"},
	{name: "query value not UTF-8", method: "GET", path: "/v1/councils?filter=%ff", status: 400, field: "filter"},
	{name: "query name not UTF-8", method: "GET", path: "/v1/councils?%ff=1", status: 400, field: "query"},
	{name: "need name not UTF-8", method: "POST", path: "/v1/councils/fordon/needs/%c3%28:submit", body: "{}", status: 400, field: "name"},
	{name: "broken escape", method: "GET", path: "/v1/councils?pageSize=%zz", status: 400, field: "query"},
	// Query parameters that do not exist or do not parse.
	{name: "request id misspelt", method: "POST", path: "/v1/councils?councilId=x&requestid=abc", body: `{"displayName":"X","sector":"SECTOR_RETAIL"}`, status: 400, field: "requestid"},
	{name: "council id misspelt", method: "POST", path: "/v1/councils?councilID=x", body: `{"displayName":"X","sector":"SECTOR_RETAIL"}`, status: 400, field: "councilID"},
	{name: "page size not a number", method: "GET", path: "/v1/councils/-/needs?pageSize=abc", status: 400, field: "pageSize"},
	{name: "page size twice", method: "GET", path: "/v1/councils?pageSize=1&pageSize=2", status: 400, field: "pageSize"},
	{name: "path field in the query", method: "GET", path: "/v1/councils/fordon?name=councils/x", status: 400, field: "name"},
	{name: "body field in the query", method: "POST", path: "/v1/councils/fordon/needs?need.title=x", body: "{}", status: 400, field: "need.title"},
	{name: "query on a body-* verb", method: "POST", path: "/v1/councils/fordon/needs/svets:submit?etag=x", body: "{}", status: 400, field: "etag"},
	// Bodies of the wrong type or shape.
	{name: "text/plain body", method: "POST", path: "/v1/councils/fordon/needs/svets:close", body: `{}`, contentType: "text/plain", status: 415, field: "Content-Type"},
	{name: "form post", method: "POST", path: "/v1/councils/fordon/needs/svets:close", body: `reason=x`, contentType: "application/x-www-form-urlencoded", status: 415, field: "Content-Type"},
	{name: "no content type", method: "POST", path: "/v1/councils", body: `{"displayName":"X","sector":"SECTOR_RETAIL"}`, contentType: "-", status: 415, field: "Content-Type"},
	{name: "latin-1 charset", method: "POST", path: "/v1/councils", body: `{"displayName":"X","sector":"SECTOR_RETAIL"}`, contentType: "application/json; charset=latin1", status: 415, field: "Content-Type"},
	{name: "body on a GET", method: "GET", path: "/v1/councils", body: `{"x":1}`, status: 400, field: "body"},
	{name: "truncated JSON", method: "POST", path: "/v1/councils/fordon/needs", body: `{"title":"x","headcount":`, status: 400, field: "need.headcount"},
	{name: "two JSON values", method: "POST", path: "/v1/councils", body: `{"displayName":"X","sector":"SECTOR_RETAIL"} {}`, status: 400, field: "council"},
	{name: "wrong type nested", method: "POST", path: "/v1/councils/fordon/needs", body: `{"title":"x","headcount":1,"targetGroups":["TARGET_GROUP_NOTIFIED"],"neededBy":{"year":"soon"}}`, status: 400, field: "need.neededBy.year"},
	{name: "unknown field nested", method: "POST", path: "/v1/councils/fordon/needs", body: `{"title":"x","headcount":1,"targetGroups":["TARGET_GROUP_NOTIFIED"],"neededBy":{"yr":2027}}`, status: 400, field: "need.neededBy.yr"},
	{name: "list of the wrong type", method: "POST", path: "/v1/councils/fordon/needs", body: `{"title":"x","headcount":1,"targetGroups":["TARGET_GROUP_NOTIFIED"],"skills":["a",7]}`, status: 400, field: "need.skills[1]"},
	{name: "body not UTF-8", method: "POST", path: "/v1/councils", body: "{\"displayName\":\"\xff\",\"sector\":\"SECTOR_RETAIL\"}", status: 400, field: "council"},
	// Text the schema refuses.
	{name: "blank title", method: "POST", path: "/v1/councils/fordon/needs", body: `{"title":"   ","headcount":1,"targetGroups":["TARGET_GROUP_NOTIFIED"]}`, status: 400, field: "need.title"},
	{name: "NUL in a name", method: "POST", path: "/v1/councils", body: `{"displayName":"A\u0000B","sector":"SECTOR_RETAIL"}`, status: 400, field: "council.displayName"},
	{name: "ESC in a member", method: "POST", path: "/v1/councils", body: `{"displayName":"A","sector":"SECTOR_RETAIL","memberOrganisations":["\u001b[2J"]}`, status: 400, field: "council.memberOrganisations[0]"},
	{name: "RLO in a title", method: "POST", path: "/v1/councils/fordon/needs", body: `{"title":"gnin\u202eppuS","headcount":1,"targetGroups":["TARGET_GROUP_NOTIFIED"]}`, status: 400, field: "need.title"},
	{name: "newline in a title", method: "POST", path: "/v1/councils/fordon/needs", body: `{"title":"a\nb","headcount":1,"targetGroups":["TARGET_GROUP_NOTIFIED"]}`, status: 400, field: "need.title"},
	{name: "BEL in a reason", method: "POST", path: "/v1/councils/fordon/needs/svets:close", body: `{"reason":"klart\u0007"}`, status: 400, field: "reason"},
	// Etags: If-Match is honoured, or refused where nothing has one.
	{name: "stale If-Match", method: "PATCH", path: "/v1/councils/fordon", body: `{"displayName":"Nytt namn"}`, header: map[string]string{"If-Match": `"0000000000000000"`}, status: 409},
	{name: "If-Match against the body's etag", method: "PATCH", path: "/v1/councils/fordon", body: `{"displayName":"Nytt","etag":"aaaa"}`, header: map[string]string{"If-Match": `"bbbb"`}, status: 400, field: "council.etag"},
	{name: "stale If-Match on delete", method: "DELETE", path: "/v1/councils/fordon", header: map[string]string{"If-Match": `"0000000000000000"`}, status: 409},
	{name: "If-Match on a create", method: "POST", path: "/v1/councils", body: `{"displayName":"X","sector":"SECTOR_RETAIL"}`, header: map[string]string{"If-Match": `"x"`}, status: 400, field: "If-Match"},
	// Lists.
	{name: "filter on an unknown field", method: "GET", path: "/v1/councils/-/needs?filter=colour%3D%22red%22", status: 400, field: "filter"},
	{name: "order by two fields", method: "GET", path: "/v1/councils/-/needs?orderBy=priority,create_time", status: 400, field: "orderBy"},
	{name: "forged page token", method: "GET", path: "/v1/councils/-/needs?pageToken=eyJzIjoiIn0.AAAA", status: 400, field: "pageToken"},
	// Companies.
	{name: "date query not a date", method: "GET", path: "/v1/companies/-/notices:summarize?startDate=2026-13-01&endDate=2026-12-31", status: 400, field: "startDate"},
	{name: "date query twice", method: "GET", path: "/v1/companies/-/notices?startDate=2026-01-01&startDate=2026-02-01", status: 400, field: "startDate"},
	{name: "organisation number with letters", method: "POST", path: "/v1/companies", body: `{"organisationNumber":"55601X-5790","displayName":"X","municipality":"1480","council":"councils/fordon"}`, status: 400, field: "company.organisationNumber"},
	{name: "employee count as text", method: "POST", path: "/v1/companies", body: `{"organisationNumber":"5599900015","displayName":"X","municipality":"1480","council":"councils/fordon","employeeCount":"many"}`, status: 400, field: "company.employeeCount"},
	{name: "notice kind unknown", method: "POST", path: "/v1/companies/volvo/notices", body: `{"kind":"KIND_STRIKE","affectedEmployees":5,"noticeDate":{"year":2026,"month":3,"day":2}}`, status: 400, field: "notice.kind"},
	{name: "newline in a coach", method: "POST", path: "/v1/companies/volvo/coachingSessions", body: `{"conversation":1,"coach":"a\nb"}`, status: 400, field: "coachingSession.coach"},
	{name: "hold out of order", method: "POST", path: "/v1/companies/volvo/coachingSessions/samtal-2:hold", body: `{}`, status: 400},
	{name: "summary of one company", method: "GET", path: "/v1/companies/volvo/notices:summarize?startDate=2026-01-01&endDate=2026-12-31", status: 404},
	{name: "order by an unordered field", method: "GET", path: "/v1/companies?orderBy=sniCode", status: 400, field: "orderBy"},
	{name: "wrong check digit on update", method: "PATCH", path: "/v1/companies/volvo", body: `{"organisationNumber":"556012-5791"}`, status: 400, field: "company.organisationNumber"},
	{name: "stale If-Match on a company delete", method: "DELETE", path: "/v1/companies/volvo", header: map[string]string{"If-Match": `"0000000000000000"`}, status: 409},
	{name: "notice name not UTF-8", method: "DELETE", path: "/v1/companies/volvo/notices/%ff", status: 400, field: "name"},
	{name: "sessions page size negative", method: "GET", path: "/v1/companies/volvo/coachingSessions?pageSize=-1", status: 400, field: "pageSize"},
	{name: "BEL in a cancel reason", method: "POST", path: "/v1/companies/volvo/coachingSessions/samtal-2:cancel", body: `{"reason":"nej\u0007"}`, status: 400, field: "reason"},
	// The remaining write RPCs of councils, one row each at least.
	{name: "NUL in a need's title", method: "PATCH", path: "/v1/councils/fordon/needs/svets", body: `{"title":"Svets\u0000ning"}`, status: 400, field: "need.title"},
	{name: "unknown priority", method: "POST", path: "/v1/councils/fordon/needs/svets:approve", body: `{"priority":"PRIORITY_URGENTISH"}`, status: 400, field: "priority"},
	{name: "field a reject does not take", method: "POST", path: "/v1/councils/fordon/needs/svets:reject", body: `{"reason":"nej","priority":"PRIORITY_HIGH"}`, status: 400, field: "priority"},
	{name: "text/plain procurement", method: "POST", path: "/v1/councils/fordon/needs/svets:startProcurement", body: `{}`, contentType: "text/plain", status: 415, field: "Content-Type"},
	{name: "request id misspelt on fulfil", method: "POST", path: "/v1/councils/fordon/needs/svets:fulfil?requestid=x", body: `{}`, status: 400, field: "requestid"},
	// The access service.
	{name: "ESC in a key's name", method: "POST", path: "/v1/apiKeys?apiKeyId=portal", body: `{"displayName":"Portal\u001b[2J","role":"ROLE_STAFF"}`, status: 400, field: "apiKey.displayName"},
	{name: "key id misspelt", method: "POST", path: "/v1/apiKeys?apikeyid=portal", body: `{"displayName":"Portal","role":"ROLE_STAFF"}`, status: 400, field: "apikeyid"},
	{name: "unknown role", method: "POST", path: "/v1/apiKeys", body: `{"displayName":"Portal","role":"ROLE_ROOT"}`, status: 400, field: "apiKey.role"},
	{name: "key name not UTF-8", method: "POST", path: "/v1/apiKeys/%ff:revoke", body: `{}`, status: 400, field: "name"},
	{name: "form post revoke", method: "POST", path: "/v1/apiKeys/fordon-portal:revoke", body: `etag=x`, contentType: "application/x-www-form-urlencoded", status: 415, field: "Content-Type"},
	{name: "key page size not a number", method: "GET", path: "/v1/apiKeys?pageSize=many", status: 400, field: "pageSize"},
	{name: "audit time not a time", method: "GET", path: "/v1/auditRecords?startTime=yesterday", status: 400, field: "startTime"},
	{name: "audit filter not UTF-8", method: "GET", path: "/v1/auditRecords?filter=%ff", status: 400, field: "filter"},
	// Procurement.
	{name: "provider id misspelt", method: "POST", path: "/v1/providers?providerID=x", body: `{"organisationNumber":"556100-0000","displayName":"X","kinds":["KIND_TEST_CENTRE"]}`, status: 400, field: "providerID"},
	{name: "money units not a number", method: "POST", path: "/v1/frameworkAgreements", body: `{"title":"X","ceilingValue":{"currencyCode":"SEK","units":"många"}}`, status: 400, field: "frameworkAgreement.ceilingValue.units"},
	{name: "unknown field in a lot", method: "POST", path: "/v1/frameworkAgreements", body: `{"title":"X","lots":[{"id":"a","rank":1}]}`, status: 400, field: "frameworkAgreement.lots[0].rank"},
	{name: "bid deadline not a time", method: "POST", path: "/v1/callOffs", body: `{"lot":"a","bidDeadline":"i morgon"}`, status: 400, field: "callOff.bidDeadline"},
	{name: "call-off days 11", method: "POST", path: "/v1/callOffs", body: `{"frameworkAgreement":"frameworkAgreements/x","lot":"a","need":"councils/fordon/needs/svets","value":{"currencyCode":"SEK","units":"1000"},"specification":{"days":11,"participants":1,"municipality":"1480","latestStart":{"year":2099,"month":1,"day":1}}}`, status: 400, field: "callOff.specification.days"},
	{name: "call-off name not UTF-8", method: "POST", path: "/v1/callOffs/%ff:accept", body: "{}", status: 400, field: "name"},
	{name: "queue ordered by an unknown field", method: "GET", path: "/v1/queuedNeeds?orderBy=colour", status: 400, field: "orderBy"},
	{name: "OCDS of a bad name", method: "GET", path: "/v1/frameworkAgreements/%C3%28:ocds", status: 400, field: "name"},
	{name: "NUL in a provider's name", method: "PATCH", path: "/v1/providers/lernia", body: `{"displayName":"Ler\u0000nia"}`, status: 400, field: "provider.displayName"},
	{name: "provider to delete not UTF-8", method: "DELETE", path: "/v1/providers/%ff", status: 400, field: "name"},
	{name: "newline in an agreement's title", method: "PATCH", path: "/v1/frameworkAgreements/teknik", body: `{"title":"Teknik\nIndustri"}`, status: 400, field: "frameworkAgreement.title"},
	{name: "query on activate", method: "POST", path: "/v1/frameworkAgreements/teknik:activate?etag=x", body: "{}", status: 400, field: "etag"},
	{name: "BEL in a termination reason", method: "POST", path: "/v1/frameworkAgreements/teknik:terminate", body: `{"reason":"slut\u0007"}`, status: 400, field: "reason"},
	{name: "decline naming no provider", method: "POST", path: "/v1/callOffs/x:decline", body: `{"provider":"lernia"}`, status: 400, field: "provider"},
	{name: "text/plain award", method: "POST", path: "/v1/callOffs/x:award", body: `{}`, contentType: "text/plain", status: 415, field: "Content-Type"},
	{name: "blank cancellation reason", method: "POST", path: "/v1/callOffs/x:cancel", body: `{"reason":"   "}`, status: 400, field: "reason"},
	{name: "quality score over 100", method: "POST", path: "/v1/callOffs/x/bids", body: `{"provider":"providers/a","qualityScore":101}`, status: 400, field: "bid.qualityScore"},
	{name: "provider filter on an unknown field", method: "GET", path: "/v1/providers?filter=colour%3D%22red%22", status: 400, field: "filter"},
	{name: "agreements ordered by title", method: "GET", path: "/v1/frameworkAgreements?orderBy=title", status: 400, field: "orderBy"},
	{name: "call-offs of no provider", method: "GET", path: "/v1/callOffs?provider=lernia", status: 400, field: "provider"},
	{name: "bids page size negative", method: "GET", path: "/v1/callOffs/x/bids?pageSize=-1", status: 400, field: "pageSize"},
	// Skills.
	{name: "skill label in no language", method: "POST", path: "/v1/skills", body: `{"preferredLabel":{"sv":"Svetsning","Svenska":"x"}}`, status: 400, field: `skill.preferredLabel["Svenska"]`},
	{name: "newline in a skill label", method: "POST", path: "/v1/skills", body: `{"preferredLabel":{"sv":"a\nb"}}`, status: 400, field: `skill.preferredLabel["sv"]`},
	{name: "import entry without a Swedish label", method: "POST", path: "/v1/skills:import",
		body: `{"skills":[{"name":"skills/a","preferredLabel":{"sv":"A"}},{"name":"skills/b","preferredLabel":{"en":"B"}}]}`, status: 400, field: "skills[1].preferredLabel"},
	{name: "personnummer as a person reference", method: "POST", path: "/v1/validations",
		body:   `{"mapping":"mappings/m","personReference":"19640823-3234","assessor":"x","assessedOn":{"year":2026,"month":2,"day":1},"results":[{"skill":"skills/a","level":1}]}`,
		status: 400, field: "validation.personReference"},
	{name: "search without a query", method: "GET", path: "/v1/skills:search", status: 400, field: "query"},
	{name: "search parameter misspelt", method: "GET", path: "/v1/skills:search?q=svets", status: 400, field: "q"},
	{name: "version not a number", method: "GET", path: "/v1/skills?version=latest", status: 400, field: "version"},
	{name: "NUL in a skill's description", method: "PATCH", path: "/v1/skills/svetsning", body: `{"description":"a\u0000b"}`, status: 400, field: "skill.description"},
	{name: "successor not a skill name", method: "POST", path: "/v1/skills/svetsning:deprecate", body: `{"replacedBy":"svetsning"}`, status: 400, field: "replacedBy"},
	{name: "required level 6", method: "POST", path: "/v1/mappings", body: `{"subject":"companies/volvo","displayName":"x","requirements":[{"skill":"skills/a","level":6,"headcount":1}]}`,
		status: 400, field: "mapping.requirements[0].level"},
	{name: "newline in a mapping's name", method: "PATCH", path: "/v1/mappings/m", body: `{"displayName":"a\nb"}`, status: 400, field: "mapping.displayName"},
	{name: "a parameter delete does not take", method: "DELETE", path: "/v1/mappings/m?force=true", status: 400, field: "force"},
	{name: "certificate id misspelt", method: "POST", path: "/v1/certificates?certificateID=c", body: `{"holderReference":"participants/p","evidence":"x","skills":[{"skill":"skills/a","level":1}]}`,
		status: 400, field: "certificateID"},
	{name: "revoke without a reason", method: "POST", path: "/v1/certificates/c:revoke", body: `{"reason":""}`, status: 400, field: "reason"},
	{name: "mapping page size negative", method: "GET", path: "/v1/mappings?pageSize=-1", status: 400, field: "pageSize"},
	{name: "validations ordered by an unknown field", method: "GET", path: "/v1/validations?orderBy=colour", status: 400, field: "orderBy"},
	{name: "certificate filter not UTF-8", method: "GET", path: "/v1/certificates?filter=%ff", status: 400, field: "filter"},
	{name: "participant's certificates order unknown", method: "GET", path: "/v1/participants/p1/certificates?orderBy=holderReference", status: 400, field: "orderBy"},
	// The enrolment service: every write and list RPC.
	{name: "NUL in a project's name", method: "POST", path: "/v1/projects", body: `{"referenceNumber":"2026/1","displayName":"A\u0000B"}`, status: 400, field: "project.displayName"},
	{name: "target not a number", method: "PATCH", path: "/v1/projects/vk", body: `{"targets":{"participants":"many"}}`, status: 400, field: "project.targets.participants"},
	{name: "text/plain close", method: "POST", path: "/v1/projects/vk:close", body: `{}`, contentType: "text/plain", status: 415, field: "Content-Type"},
	{name: "project filter on an unknown field", method: "GET", path: "/v1/projects?filter=colour%3D1", status: 400, field: "filter"},
	{name: "offering id misspelt", method: "POST", path: "/v1/offerings?offeringID=x", body: `{"title":"X"}`, status: 400, field: "offeringID"},
	{name: "offerings by an unknown order", method: "GET", path: "/v1/offerings?orderBy=title", status: 400, field: "orderBy"},
	{name: "session date not a date", method: "PATCH", path: "/v1/offerings/svets", body: `{"sessions":[{"date":{"year":"soon"}}]}`, status: 400, field: "offering.sessions[0].date.year"},
	{name: "query on open", method: "POST", path: "/v1/offerings/svets:open?etag=x", body: "{}", status: 400, field: "etag"},
	{name: "offering to start not UTF-8", method: "POST", path: "/v1/offerings/%ff:start", body: "{}", status: 400, field: "name"},
	{name: "form post finish", method: "POST", path: "/v1/offerings/svets:finish", body: `etag=x`, contentType: "application/x-www-form-urlencoded", status: 415, field: "Content-Type"},
	{name: "BEL in a cancel reason", method: "POST", path: "/v1/offerings/svets:cancel", body: `{"reason":"inställd\u0007"}`, status: 400, field: "reason"},
	{name: "personnummer as a number", method: "POST", path: "/v1/participants", body: `{"personalIdentityNumber":196408233234}`, status: 400, field: "participant.personalIdentityNumber"},
	{name: "unknown view", method: "GET", path: "/v1/participants?view=EVERYTHING", status: 400, field: "view"},
	{name: "RLO in a given name", method: "PATCH", path: "/v1/participants/p1", body: `{"givenName":"A\u202eB"}`, status: 400, field: "participant.givenName"},
	{name: "unknown field on an enrolment", method: "POST", path: "/v1/offerings/svets/enrolments", body: `{"participant":"participants/p1","seat":1}`, status: 400, field: "enrolment.seat"},
	{name: "enrolment page size not a number", method: "GET", path: "/v1/offerings/svets/enrolments?pageSize=abc", status: 400, field: "pageSize"},
	{name: "NUL in a withdrawal reason", method: "POST", path: "/v1/offerings/svets/enrolments/e1:withdraw", body: `{"reason":"nej\u0000"}`, status: 400, field: "reason"},
	{name: "participant's enrolments filter not UTF-8", method: "GET", path: "/v1/participants/p1/enrolments?filter=%ff", status: 400, field: "filter"},
	{name: "attendance hours as text", method: "POST", path: "/v1/offerings/svets/enrolments/e1:recordAttendance", body: `{"hours":"all"}`, status: 400, field: "hours"},
	{name: "batch attendance of 25 hours", method: "POST", path: "/v1/offerings/svets:recordAttendance",
		body:   `{"records":[{"enrolment":"offerings/svets/enrolments/e1","sessionDate":{"year":2026,"month":4,"day":14},"status":"ATTENDANCE_STATUS_PRESENT","hours":25}]}`,
		status: 400, field: "records[0].hours"},
	{name: "attendance list paged", method: "GET", path: "/v1/offerings/svets/enrolments/e1/attendance?pageSize=1", status: 400, field: "pageSize"},
	{name: "unknown field on a completion", method: "POST", path: "/v1/offerings/svets/enrolments/e1:complete", body: `{"result":"RESULT_PASSED","grade":"A"}`, status: 400, field: "grade"},
	{name: "outcome month as text", method: "POST", path: "/v1/participants/p1:recordOutcome",
		body: `{"project":"projects/vk","timing":"OUTCOME_TIMING_EXIT","outcome":"OUTCOME_NEW_JOB","date":{"year":2026,"month":"mars","day":2}}`, status: 400, field: "date.month"},
	{name: "outcomes filtered", method: "GET", path: "/v1/participants/p1/outcomes?filter=x", status: 400, field: "filter"},
	{name: "erasure without a reason", method: "POST", path: "/v1/participants/p1:erase", body: `{"reason":""}`, status: 400, field: "reason"},
	// Sizes.
	{name: "oversized headers", method: "GET", path: "/v1/councils", header: map[string]string{"X-Padding": strings.Repeat("a", 80<<10)}, status: 431},
	{name: "oversized body", method: "POST", path: "/v1/councils", body: `{"displayName":"` + strings.Repeat("a", 2<<20) + `"}`, status: 413},
}

// hostileRPC is one gRPC call, by its raw request bytes, and the error it
// must get.
type hostileRPC struct {
	name, method string
	request      []byte
	code         codes.Code
	field        string // proto path
}

func msg(m proto.Message) []byte { b, _ := proto.Marshal(m); return b }

// field appends one length-delimited field to b.
func field(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

var hostileGRPC = []hostileRPC{
	{name: "council name not UTF-8", method: councilsv1.CouncilsService_CreateCouncil_FullMethodName,
		request: field(nil, 1, field(nil, 2, []byte("Fordon\xc3\x28"))), code: codes.InvalidArgument, field: "council.display_name"},
	{name: "need skill not UTF-8", method: councilsv1.CouncilsService_CreateNeed_FullMethodName,
		request: field(field(nil, 1, []byte("councils/fordon")), 2, field(field(nil, 2, []byte("x")), 4, []byte{0xff})), code: codes.InvalidArgument, field: "need.skills[0]"},
	{name: "truncated request", method: councilsv1.CouncilsService_CreateCouncil_FullMethodName,
		request: msg(&councilsv1.CreateCouncilRequest{Council: &councilsv1.SectorCouncil{DisplayName: "Fordon"}})[:5], code: codes.InvalidArgument, field: "request"},
	{name: "list parent not UTF-8", method: councilsv1.CouncilsService_ListNeeds_FullMethodName,
		request: field(nil, 1, []byte("councils/\xff")), code: codes.InvalidArgument, field: "parent"},
	{name: "blank title", method: councilsv1.CouncilsService_CreateNeed_FullMethodName,
		request: msg(&councilsv1.CreateNeedRequest{Parent: "councils/fordon", Need: &councilsv1.CompetenceNeed{Title: " \t", Headcount: 1}}), code: codes.InvalidArgument, field: "need.title"},
	{name: "control character in a reason", method: councilsv1.CouncilsService_RejectNeed_FullMethodName,
		request: msg(&councilsv1.RejectNeedRequest{Name: "councils/fordon/needs/svets", Reason: "nej\x1b[0m"}), code: codes.InvalidArgument, field: "reason"},
	{name: "bidi override in a council name", method: councilsv1.CouncilsService_UpdateCouncil_FullMethodName,
		request: msg(&councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: "councils/fordon", DisplayName: "\u202dFordon"}}), code: codes.InvalidArgument, field: "council.display_name"},
	{name: "provider name not UTF-8", method: procurementv1.ProcurementService_CreateProvider_FullMethodName,
		request: field(nil, 1, field(nil, 3, []byte("Lernia\xc3\x28"))), code: codes.InvalidArgument, field: "provider.display_name"},
	{name: "call-off of 11 days", method: procurementv1.ProcurementService_CreateCallOff_FullMethodName,
		request: msg(&procurementv1.CreateCallOffRequest{CallOff: &procurementv1.CallOff{FrameworkAgreement: "frameworkAgreements/x", Lot: "a",
			Need: "councils/fordon/needs/svets", Value: &money.Money{CurrencyCode: "SEK", Units: 1},
			Specification: &procurementv1.Specification{Days: 11, Participants: 1, Municipality: "1480", LatestStart: &date.Date{Year: 2099, Month: 1, Day: 1}}}}),
		code: codes.InvalidArgument, field: "call_off.specification.days"},
	{name: "decline reason with a control character", method: procurementv1.ProcurementService_DeclineCallOff_FullMethodName,
		request: msg(&procurementv1.DeclineCallOffRequest{Name: "callOffs/x", Reason: "nej\x1b[0m"}), code: codes.InvalidArgument, field: "reason"},
	{name: "bidi override in a provider's name", method: procurementv1.ProcurementService_UpdateProvider_FullMethodName,
		request: msg(&procurementv1.UpdateProviderRequest{Provider: &procurementv1.Provider{Name: "providers/lernia", DisplayName: "\u202eainreL"}}),
		code:    codes.InvalidArgument, field: "provider.display_name"},
	{name: "provider to delete not UTF-8", method: procurementv1.ProcurementService_DeleteProvider_FullMethodName,
		request: field(nil, 1, []byte("providers/\xff")), code: codes.InvalidArgument, field: "name"},
	{name: "NUL in an agreement's title", method: procurementv1.ProcurementService_CreateFrameworkAgreement_FullMethodName,
		request: msg(&procurementv1.CreateFrameworkAgreementRequest{FrameworkAgreement: &procurementv1.FrameworkAgreement{Title: "Tek\x00nik"}}),
		code:    codes.InvalidArgument, field: "framework_agreement.title"},
	{name: "truncated agreement update", method: procurementv1.ProcurementService_UpdateFrameworkAgreement_FullMethodName,
		request: msg(&procurementv1.UpdateFrameworkAgreementRequest{FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: "frameworkAgreements/teknik"}})[:5],
		code:    codes.InvalidArgument, field: "request"},
	{name: "agreement to activate not UTF-8", method: procurementv1.ProcurementService_ActivateFrameworkAgreement_FullMethodName,
		request: field(nil, 1, []byte("frameworkAgreements/\xc3")), code: codes.InvalidArgument, field: "name"},
	{name: "blank termination reason", method: procurementv1.ProcurementService_TerminateFrameworkAgreement_FullMethodName,
		request: msg(&procurementv1.TerminateFrameworkAgreementRequest{Name: "frameworkAgreements/teknik", Reason: " \t"}), code: codes.InvalidArgument, field: "reason"},
	{name: "truncated accept", method: procurementv1.ProcurementService_AcceptCallOff_FullMethodName,
		request: msg(&procurementv1.AcceptCallOffRequest{Name: "callOffs/x"})[:4], code: codes.InvalidArgument, field: "request"},
	{name: "C1 control in a call-off's name", method: procurementv1.ProcurementService_AwardCallOff_FullMethodName,
		request: msg(&procurementv1.AwardCallOffRequest{Name: "callOffs/x\u0085"}), code: codes.InvalidArgument, field: "name"},
	{name: "NUL in a cancellation reason", method: procurementv1.ProcurementService_CancelCallOff_FullMethodName,
		request: msg(&procurementv1.CancelCallOffRequest{Name: "callOffs/x", Reason: "inställt\x00"}), code: codes.InvalidArgument, field: "reason"},
	{name: "quality score over 100", method: procurementv1.ProcurementService_CreateBid_FullMethodName,
		request: msg(&procurementv1.CreateBidRequest{Parent: "callOffs/x", Bid: &procurementv1.Bid{Provider: "providers/a", QualityScore: 101,
			Price: &money.Money{CurrencyCode: "SEK", Units: 1}, ProposedStart: &date.Date{Year: 2099, Month: 1, Day: 1}}}),
		code: codes.InvalidArgument, field: "bid.quality_score"},
	{name: "provider page size negative", method: procurementv1.ProcurementService_ListProviders_FullMethodName,
		request: msg(&procurementv1.ListProvidersRequest{PageSize: -1}), code: codes.InvalidArgument, field: "page_size"},
	{name: "agreement filter not UTF-8", method: procurementv1.ProcurementService_ListFrameworkAgreements_FullMethodName,
		request: field(nil, 3, []byte("state = \"\xff\"")), code: codes.InvalidArgument, field: "filter"},
	{name: "call-offs of no provider", method: procurementv1.ProcurementService_ListCallOffs_FullMethodName,
		request: msg(&procurementv1.ListCallOffsRequest{Provider: "lernia"}), code: codes.InvalidArgument, field: "provider"},
	{name: "bids of a call-off not UTF-8", method: procurementv1.ProcurementService_ListBids_FullMethodName,
		request: field(nil, 1, []byte("callOffs/\xfe")), code: codes.InvalidArgument, field: "parent"},
	{name: "queue page size negative", method: procurementv1.ProcurementService_ListQueuedNeeds_FullMethodName,
		request: msg(&procurementv1.ListQueuedNeedsRequest{PageSize: -3}), code: codes.InvalidArgument, field: "page_size"},
	{name: "page size negative", method: councilsv1.CouncilsService_ListCouncils_FullMethodName,
		request: msg(&councilsv1.ListCouncilsRequest{PageSize: -1}), code: codes.InvalidArgument, field: "page_size"},
	{name: "organisation number not UTF-8", method: companiesv1.CompaniesService_LookupCompany_FullMethodName,
		request: field(nil, 1, []byte("556012\xff5790")), code: codes.InvalidArgument, field: "organisation_number"},
	{name: "personnummer as organisation number", method: companiesv1.CompaniesService_CreateCompany_FullMethodName,
		request: msg(&companiesv1.CreateCompanyRequest{Company: &companiesv1.Company{OrganisationNumber: "121212-1212", DisplayName: "X",
			Municipality: "1480", Council: "councils/fordon"}}), code: codes.InvalidArgument, field: "company.organisation_number"},
	{name: "coach with a personnummer", method: companiesv1.CompaniesService_CreateCoachingSession_FullMethodName,
		request: msg(&companiesv1.CreateCoachingSessionRequest{Parent: "companies/volvo", CoachingSession: &companiesv1.CoachingSession{
			Conversation: 1, Coach: "Anna 19121212-1212"}}), code: codes.InvalidArgument, field: "coaching_session.coach"},
	{name: "company filter not UTF-8", method: companiesv1.CompaniesService_ListCompanies_FullMethodName,
		request: field(nil, 3, []byte("council = \"\xff\"")), code: codes.InvalidArgument, field: "filter"},
	{name: "bidi override in a company name", method: companiesv1.CompaniesService_UpdateCompany_FullMethodName,
		request: msg(&companiesv1.UpdateCompanyRequest{Company: &companiesv1.Company{Name: "companies/volvo", DisplayName: "\u202eOVLOV"}}),
		code:    codes.InvalidArgument, field: "company.display_name"},
	{name: "company to delete not UTF-8", method: companiesv1.CompaniesService_DeleteCompany_FullMethodName,
		request: field(nil, 1, []byte("companies/\xff")), code: codes.InvalidArgument, field: "name"},
	{name: "more affected than employed", method: companiesv1.CompaniesService_CreateNotice_FullMethodName,
		request: msg(&companiesv1.CreateNoticeRequest{Parent: "companies/volvo", Notice: &companiesv1.Notice{Kind: companiesv1.Notice_KIND_FURLOUGH,
			AffectedEmployees: 7000, NoticeDate: &date.Date{Year: 2026, Month: 3, Day: 2}}}), code: codes.InvalidArgument, field: "notice.affected_employees"},
	{name: "truncated notice list", method: companiesv1.CompaniesService_ListNotices_FullMethodName,
		request: msg(&companiesv1.ListNoticesRequest{Parent: "companies/-"})[:4], code: codes.InvalidArgument, field: "request"},
	{name: "notice to delete not UTF-8", method: companiesv1.CompaniesService_DeleteNotice_FullMethodName,
		request: field(nil, 1, []byte("companies/volvo/notices/\xfe")), code: codes.InvalidArgument, field: "name"},
	{name: "sessions page size negative", method: companiesv1.CompaniesService_ListCoachingSessions_FullMethodName,
		request: msg(&companiesv1.ListCoachingSessionsRequest{Parent: "companies/volvo", PageSize: -3}), code: codes.InvalidArgument, field: "page_size"},
	{name: "NUL in a session's notes", method: companiesv1.CompaniesService_HoldCoachingSession_FullMethodName,
		request: msg(&companiesv1.HoldCoachingSessionRequest{Name: "companies/volvo/coachingSessions/samtal-2", Notes: "rad 1\nrad\x002"}),
		code:    codes.InvalidArgument, field: "notes"},
	{name: "session to cancel not UTF-8", method: companiesv1.CompaniesService_CancelCoachingSession_FullMethodName,
		request: field(nil, 1, []byte("companies/volvo/coachingSessions/\xff")), code: codes.InvalidArgument, field: "name"},
	{name: "council to delete not UTF-8", method: councilsv1.CouncilsService_DeleteCouncil_FullMethodName,
		request: field(nil, 1, []byte("councils/\xc3")), code: codes.InvalidArgument, field: "name"},
	{name: "NUL in a need's description", method: councilsv1.CouncilsService_UpdateNeed_FullMethodName,
		request: msg(&councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: "councils/fordon/needs/svets", Description: "rad 1\nrad\x002"}}),
		code:    codes.InvalidArgument, field: "need.description"},
	{name: "truncated submit", method: councilsv1.CouncilsService_SubmitNeed_FullMethodName,
		request: msg(&councilsv1.SubmitNeedRequest{Name: "councils/fordon/needs/svets"})[:4], code: codes.InvalidArgument, field: "request"},
	{name: "NUL in a closing reason", method: councilsv1.CouncilsService_CloseNeed_FullMethodName,
		request: msg(&councilsv1.CloseNeedRequest{Name: "councils/fordon/needs/svets", Reason: "klart\x00"}), code: codes.InvalidArgument, field: "reason"},
	{name: "need to approve not UTF-8", method: councilsv1.CouncilsService_ApproveNeed_FullMethodName,
		request: field(nil, 1, []byte("councils/fordon/needs/\xfe")), code: codes.InvalidArgument, field: "name"},
	{name: "truncated procurement", method: councilsv1.CouncilsService_StartNeedProcurement_FullMethodName,
		request: msg(&councilsv1.StartNeedProcurementRequest{Name: "councils/fordon/needs/svets"})[:6], code: codes.InvalidArgument, field: "request"},
	{name: "C1 control in a need's name", method: councilsv1.CouncilsService_FulfilNeed_FullMethodName,
		request: msg(&councilsv1.FulfilNeedRequest{Name: "councils/fordon/needs/svets\u0085"}), code: codes.InvalidArgument, field: "name"},
	{name: "bidi override in a key's name", method: accessv1.AccessService_CreateApiKey_FullMethodName,
		request: msg(&accessv1.CreateApiKeyRequest{ApiKey: &accessv1.ApiKey{DisplayName: "\u202eatropP", Role: accessv1.Role_ROLE_STAFF}}),
		code:    codes.InvalidArgument, field: "api_key.display_name"},
	{name: "key to revoke not UTF-8", method: accessv1.AccessService_RevokeApiKey_FullMethodName,
		request: field(nil, 1, []byte("apiKeys/\xff")), code: codes.InvalidArgument, field: "name"},
	{name: "key page size negative", method: accessv1.AccessService_ListApiKeys_FullMethodName,
		request: msg(&accessv1.ListApiKeysRequest{PageSize: -5}), code: codes.InvalidArgument, field: "page_size"},
	{name: "audit filter not UTF-8", method: accessv1.AccessService_ListAuditRecords_FullMethodName,
		request: field(nil, 3, []byte("service = \"\xff\"")), code: codes.InvalidArgument, field: "filter"},
	{name: "import entry name not UTF-8", method: skillsv1.SkillsService_ImportSkills_FullMethodName,
		request: field(nil, 1, field(nil, 1, []byte("skills/\xff"))), code: codes.InvalidArgument, field: "skills[0].name"},
	{name: "certificate holder a personnummer", method: skillsv1.SkillsService_CreateCertificate_FullMethodName,
		request: msg(&skillsv1.CreateCertificateRequest{Certificate: &skillsv1.CompetenceCertificate{HolderReference: "640823-3234", Evidence: "kurs-1",
			Skills: []*skillsv1.CertifiedSkill{{Skill: "skills/a", Level: 1}}}}), code: codes.InvalidArgument, field: "certificate.holder_reference"},
	{name: "skill id with capitals", method: skillsv1.SkillsService_CreateSkill_FullMethodName,
		request: msg(&skillsv1.CreateSkillRequest{SkillId: "Svetsning", Skill: &skillsv1.Skill{PreferredLabel: map[string]string{"sv": "Svetsning"}}}),
		code:    codes.InvalidArgument, field: "skill_id"},
	{name: "skill page size negative", method: skillsv1.SkillsService_ListSkills_FullMethodName,
		request: msg(&skillsv1.ListSkillsRequest{PageSize: -1}), code: codes.InvalidArgument, field: "page_size"},
	{name: "skill to update not UTF-8", method: skillsv1.SkillsService_UpdateSkill_FullMethodName,
		request: field(nil, 1, field(nil, 1, []byte("skills/\xc3"))), code: codes.InvalidArgument, field: "skill.name"},
	{name: "truncated deprecation", method: skillsv1.SkillsService_DeprecateSkill_FullMethodName,
		request: msg(&skillsv1.DeprecateSkillRequest{Name: "skills/svetsning", ReplacedBy: "skills/tig"})[:5], code: codes.InvalidArgument, field: "request"},
	{name: "bidi override in a mapping's name", method: skillsv1.SkillsService_CreateMapping_FullMethodName,
		request: msg(&skillsv1.CreateMappingRequest{Mapping: &skillsv1.CompetenceMapping{Subject: "companies/volvo", DisplayName: "\u202eVolvo",
			Requirements: []*skillsv1.Requirement{{Skill: "skills/a", Level: 1, Headcount: 1}}}}), code: codes.InvalidArgument, field: "mapping.display_name"},
	{name: "mapping filter not UTF-8", method: skillsv1.SkillsService_ListMappings_FullMethodName,
		request: field(nil, 3, []byte("subject = \"\xff\"")), code: codes.InvalidArgument, field: "filter"},
	{name: "NUL in a mapping's description", method: skillsv1.SkillsService_UpdateMapping_FullMethodName,
		request: msg(&skillsv1.UpdateMappingRequest{Mapping: &skillsv1.CompetenceMapping{Name: "mappings/m", Description: "rad\x00"}}), code: codes.InvalidArgument, field: "mapping.description"},
	{name: "mapping to delete not UTF-8", method: skillsv1.SkillsService_DeleteMapping_FullMethodName,
		request: field(nil, 1, []byte("mappings/\xff")), code: codes.InvalidArgument, field: "name"},
	{name: "person reference a personnummer", method: skillsv1.SkillsService_CreateValidation_FullMethodName,
		request: msg(&skillsv1.CreateValidationRequest{Validation: &skillsv1.IndustryValidation{Mapping: "mappings/m", PersonReference: "19640823-3234", Assessor: "x",
			AssessedOn: &date.Date{Year: 2026, Month: 2, Day: 1}, Results: []*skillsv1.AssessedSkill{{Skill: "skills/a", Level: 1}}}}),
		code: codes.InvalidArgument, field: "validation.person_reference"},
	{name: "validation page size negative", method: skillsv1.SkillsService_ListValidations_FullMethodName,
		request: msg(&skillsv1.ListValidationsRequest{PageSize: -1}), code: codes.InvalidArgument, field: "page_size"},
	{name: "truncated certificate list", method: skillsv1.SkillsService_ListCertificates_FullMethodName,
		request: msg(&skillsv1.ListCertificatesRequest{Filter: "revoked = \"true\""})[:4], code: codes.InvalidArgument, field: "request"},
	{name: "participant's certificates of a parent not UTF-8", method: skillsv1.SkillsService_ListParticipantCertificates_FullMethodName,
		request: field(nil, 1, []byte("participants/\xff")), code: codes.InvalidArgument, field: "parent"},
	{name: "escape in a revocation reason", method: skillsv1.SkillsService_RevokeCertificate_FullMethodName,
		request: msg(&skillsv1.RevokeCertificateRequest{Name: "certificates/c", Reason: "fel\x1b[0m"}), code: codes.InvalidArgument, field: "reason"},
	{name: "project name not UTF-8", method: enrolmentv1.EnrolmentService_CreateProject_FullMethodName,
		request: field(nil, 1, field(nil, 3, []byte("VästKraft\xc3\x28"))), code: codes.InvalidArgument, field: "project.display_name"},
	{name: "bidi override in a funder", method: enrolmentv1.EnrolmentService_UpdateProject_FullMethodName,
		request: msg(&enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: "projects/vk", Funder: "\u202eESF"}}), code: codes.InvalidArgument, field: "project.funder"},
	{name: "truncated close", method: enrolmentv1.EnrolmentService_CloseProject_FullMethodName,
		request: msg(&enrolmentv1.CloseProjectRequest{Name: "projects/vk"})[:4], code: codes.InvalidArgument, field: "request"},
	{name: "project page size negative", method: enrolmentv1.EnrolmentService_ListProjects_FullMethodName,
		request: msg(&enrolmentv1.ListProjectsRequest{PageSize: -1}), code: codes.InvalidArgument, field: "page_size"},
	{name: "offering title not UTF-8", method: enrolmentv1.EnrolmentService_CreateOffering_FullMethodName,
		request: field(nil, 1, field(nil, 4, []byte("Svets\xff"))), code: codes.InvalidArgument, field: "offering.title"},
	{name: "offering filter not UTF-8", method: enrolmentv1.EnrolmentService_ListOfferings_FullMethodName,
		request: field(nil, 3, []byte("state = \"\xff\"")), code: codes.InvalidArgument, field: "filter"},
	{name: "NUL in a session's location", method: enrolmentv1.EnrolmentService_UpdateOffering_FullMethodName,
		request: msg(&enrolmentv1.UpdateOfferingRequest{Offering: &enrolmentv1.Offering{Name: "offerings/svets",
			Sessions: []*enrolmentv1.Session{{Location: "Lindholmen\x00"}}}}), code: codes.InvalidArgument, field: "offering.sessions[0].location"},
	{name: "offering to open not UTF-8", method: enrolmentv1.EnrolmentService_OpenOffering_FullMethodName,
		request: field(nil, 1, []byte("offerings/\xff")), code: codes.InvalidArgument, field: "name"},
	{name: "truncated start", method: enrolmentv1.EnrolmentService_StartOffering_FullMethodName,
		request: msg(&enrolmentv1.StartOfferingRequest{Name: "offerings/svets"})[:5], code: codes.InvalidArgument, field: "request"},
	{name: "C1 control in an offering's name", method: enrolmentv1.EnrolmentService_FinishOffering_FullMethodName,
		request: msg(&enrolmentv1.FinishOfferingRequest{Name: "offerings/svets\u0085"}), code: codes.InvalidArgument, field: "name"},
	{name: "ESC in a cancel reason", method: enrolmentv1.EnrolmentService_CancelOffering_FullMethodName,
		request: msg(&enrolmentv1.CancelOfferingRequest{Name: "offerings/svets", Reason: "inställd\x1b[0m"}), code: codes.InvalidArgument, field: "reason"},
	{name: "given name not UTF-8", method: enrolmentv1.EnrolmentService_CreateParticipant_FullMethodName,
		request: field(nil, 1, field(nil, 3, []byte("Z\xfe"))), code: codes.InvalidArgument, field: "participant.given_name"},
	{name: "participant page size negative", method: enrolmentv1.EnrolmentService_ListParticipants_FullMethodName,
		request: msg(&enrolmentv1.ListParticipantsRequest{PageSize: -3}), code: codes.InvalidArgument, field: "page_size"},
	{name: "ESC in a family name", method: enrolmentv1.EnrolmentService_UpdateParticipant_FullMethodName,
		request: msg(&enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: "participants/p1", FamilyName: "Ö\x1b[2J"}}),
		code:    codes.InvalidArgument, field: "participant.family_name"},
	{name: "enrolment parent not UTF-8", method: enrolmentv1.EnrolmentService_CreateEnrolment_FullMethodName,
		request: field(nil, 1, []byte("offerings/\xc3")), code: codes.InvalidArgument, field: "parent"},
	{name: "enrolment list parent not UTF-8", method: enrolmentv1.EnrolmentService_ListEnrolments_FullMethodName,
		request: field(nil, 1, []byte("offerings/\xff")), code: codes.InvalidArgument, field: "parent"},
	{name: "NUL in a withdrawal reason", method: enrolmentv1.EnrolmentService_WithdrawEnrolment_FullMethodName,
		request: msg(&enrolmentv1.WithdrawEnrolmentRequest{Name: "offerings/svets/enrolments/e1", Reason: "nej\x00"}), code: codes.InvalidArgument, field: "reason"},
	{name: "participant's enrolments page size negative", method: enrolmentv1.EnrolmentService_ListParticipantEnrolments_FullMethodName,
		request: msg(&enrolmentv1.ListParticipantEnrolmentsRequest{Parent: "participants/p1", PageSize: -1}), code: codes.InvalidArgument, field: "page_size"},
	{name: "attendance of 25 hours", method: enrolmentv1.EnrolmentService_RecordAttendance_FullMethodName,
		request: msg(&enrolmentv1.RecordAttendanceRequest{Name: "offerings/svets/enrolments/e1", SessionDate: &date.Date{Year: 2026, Month: 4, Day: 14},
			Status: enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, Hours: 25}), code: codes.InvalidArgument, field: "hours"},
	{name: "batch attendance without records", method: enrolmentv1.EnrolmentService_BatchRecordAttendance_FullMethodName,
		request: msg(&enrolmentv1.BatchRecordAttendanceRequest{Offering: "offerings/svets"}), code: codes.InvalidArgument, field: "records"},
	{name: "truncated attendance list", method: enrolmentv1.EnrolmentService_ListAttendance_FullMethodName,
		request: msg(&enrolmentv1.ListAttendanceRequest{Parent: "offerings/svets/enrolments/e1"})[:4], code: codes.InvalidArgument, field: "request"},
	{name: "completion without a result", method: enrolmentv1.EnrolmentService_CompleteEnrolment_FullMethodName,
		request: msg(&enrolmentv1.CompleteEnrolmentRequest{Name: "offerings/svets/enrolments/e1"}), code: codes.InvalidArgument, field: "result"},
	{name: "outcome without a timing", method: enrolmentv1.EnrolmentService_RecordOutcome_FullMethodName,
		request: msg(&enrolmentv1.RecordOutcomeRequest{Participant: "participants/p1", Project: "projects/vk", Outcome: enrolmentv1.Outcome_OUTCOME_NEW_JOB,
			Date: &date.Date{Year: 2026, Month: 3, Day: 2}}), code: codes.InvalidArgument, field: "timing"},
	{name: "outcomes of an upper-case id", method: enrolmentv1.EnrolmentService_ListParticipantOutcomes_FullMethodName,
		request: msg(&enrolmentv1.ListParticipantOutcomesRequest{Parent: "participants/P1"}), code: codes.InvalidArgument, field: "parent"},
	{name: "ESC in an erasure reason", method: enrolmentv1.EnrolmentService_EraseParticipant_FullMethodName,
		request: msg(&enrolmentv1.EraseParticipantRequest{Name: "participants/p1", Reason: "art. 17\x1b[0m"}), code: codes.InvalidArgument, field: "reason"},
}

// internals are words that say a message was written by a library, not for
// the caller.
var internals = []string{"proto:", "grpc:", "strconv.", "runtime error", "goroutine", ".go:", "rpc error", "syntax error (line", "panic"}

// keyspaceDigest is a digest of every key and value in rdb (DUMP): what a
// rejected request must leave unchanged.
func keyspaceDigest(t *testing.T, rdb redis.UniversalClient) (int, string) {
	t.Helper()
	ctx := context.Background()
	keys := testkit.Keys(t, rdb, "*")
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		v, err := rdb.Dump(ctx, k).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		io.WriteString(h, k+"\x00"+v+"\x00")
	}
	return len(keys), hex.EncodeToString(h.Sum(nil))
}

func TestHostileInputIsRefusedPreciselyAndWritesNothing(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=fordon", council)
	c.ok("POST", "/v1/councils/fordon/needs?needId=svets", needBody())
	c.ok("POST", "/v1/companies?companyId=volvo", companyBody("556012-5790"))
	c.ok("POST", "/v1/companies/volvo/coachingSessions?coachingSessionId=samtal-2", map[string]any{"conversation": 2, "coach": "Coach"})

	t.Run("REST", func(t *testing.T) {
		for _, h := range hostileREST {
			t.Run(h.name, func(t *testing.T) {
				collectAudit(t, a, rdb) // the collector writes in the background; let it finish
				keys, digest := keyspaceDigest(t, rdb)
				req, err := http.NewRequest(h.method, "http://"+a.HTTPAddr+h.path, strings.NewReader(h.body))
				if err != nil {
					// Go refuses to even build the request: nothing can reach us.
					t.Skipf("the client refuses this URL itself: %v", err)
				}
				switch {
				case h.contentType == "-":
				case h.contentType != "":
					req.Header.Set("Content-Type", h.contentType)
				default:
					req.Header.Set("Content-Type", "application/json")
				}
				req.Header.Set("Authorization", "Bearer "+a.BootstrapKey)
				for k, v := range h.header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != h.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, h.status, raw)
				}
				if h.status != 431 { // Go's server answers that one in plain text
					var body struct {
						Code    int              `json:"code"`
						Message string           `json:"message"`
						Details []map[string]any `json:"details"`
					}
					if err := json.Unmarshal(raw, &body); err != nil || body.Message == "" {
						t.Fatalf("not an API error: %s", raw)
					}
					for _, w := range internals {
						if strings.Contains(body.Message, w) {
							t.Errorf("message shows internals (%q): %s", w, body.Message)
						}
					}
					if h.field != "" && !slices.Contains(violated(reply{body: map[string]any{"details": anySlice(body.Details)}}), h.field) {
						t.Fatalf("BadRequest does not name %q: %s", h.field, raw)
					}
				}
				if k, d := keyspaceDigest(t, rdb); k != keys || d != digest {
					t.Fatalf("the refused request changed the store (%d → %d keys)", keys, k)
				}
			})
		}
	})

	t.Run("gRPC", func(t *testing.T) {
		conn, err := grpc.NewClient(a.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.Bearer(a.BootstrapKey)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, h := range hostileGRPC {
			t.Run(h.name, func(t *testing.T) {
				collectAudit(t, a, rdb) // the collector writes in the background; let it finish
				keys, digest := keyspaceDigest(t, rdb)
				body := h.request
				var out []byte
				err := conn.Invoke(context.Background(), h.method, &body, &out, grpc.ForceCodecV2(rawCodec{}))
				st := status.Convert(err)
				if st.Code() != h.code {
					t.Fatalf("%v, want %v", err, h.code)
				}
				for _, w := range internals {
					if strings.Contains(st.Message(), w) {
						t.Errorf("message shows internals (%q): %s", w, st.Message())
					}
				}
				if h.field != "" {
					testkit.WantBadRequest(t, err, h.field)
				}
				if k, d := keyspaceDigest(t, rdb); k != keys || d != digest {
					t.Fatalf("the refused call changed the store (%d → %d keys)", keys, k)
				}
			})
		}
	})
}

func anySlice(ds []map[string]any) []any {
	out := make([]any, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}

// rawCodec sends and receives bytes as they are.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// An empty list is an empty array, which clients iterate without a check.
func TestEmptyListIsAnEmptyArray(t *testing.T) {
	a := start(t, testkit.Redis(t), false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	r := c.do("GET", "/v1/councils", nil)
	if r.status != http.StatusOK || !strings.Contains(r.raw, `"councils":[]`) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	c.ok("POST", "/v1/councils?councilId=fordon", council)
	r = c.do("GET", "/v1/councils/fordon/needs", nil)
	if r.status != http.StatusOK || !strings.Contains(r.raw, `"needs":[]`) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// The table covers every write and list RPC the all-in-one serves, over
// both transports: a service that adds RPCs without rows here fails this
// test, naming them. A REST row counts for the operation of the OpenAPI
// document its method and path match.
func TestHostileTableCoversEveryWriteAndList(t *testing.T) {
	a := start(t, nil, false)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name, In, Pattern string
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(client{t, "http://" + a.HTTPAddr, ""}.do("GET", "/openapi.json", nil).raw), &doc); err != nil {
		t.Fatal(err)
	}
	// Each operation as a method and a pattern of the paths it serves.
	type operation struct {
		method string
		path   *regexp.Regexp
	}
	ops := map[string][]operation{} // by operationId, "CouncilsService_CreateNeed"
	for path, byMethod := range doc.Paths {
		for method, op := range byMethod {
			expr := regexp.QuoteMeta(path)
			for _, p := range op.Parameters {
				if p.In == "path" {
					expr = strings.ReplaceAll(expr, regexp.QuoteMeta("{"+p.Name+"}"), p.Pattern)
				}
			}
			ops[op.OperationID] = append(ops[op.OperationID], operation{strings.ToUpper(method), regexp.MustCompile("^" + expr + "$")})
		}
	}
	restRows, grpcRows := map[string]int{}, map[string]int{}
	for _, h := range hostileREST {
		path, _, _ := strings.Cut(h.path, "?")
		for id, os := range ops {
			for _, o := range os {
				if o.method == h.method && o.path.MatchString(path) {
					restRows[id]++
				}
			}
		}
	}
	for _, h := range hostileGRPC {
		grpcRows[strings.TrimPrefix(h.method, "/")]++
	}
	checked := 0
	for svc, info := range a.ServiceInfo() {
		for _, m := range info.Methods {
			full := svc + "/" + m.Name
			rule, ok := a.Guard.Rule("/" + full)
			if !ok || !(rule.Write || strings.HasPrefix(m.Name, "List")) {
				continue
			}
			checked++
			if grpcRows[full] == 0 {
				t.Errorf("%s: no row in hostileGRPC", full)
			}
			id := svc[strings.LastIndex(svc, ".")+1:] + "_" + m.Name
			if _, routed := ops[id]; routed && restRows[id] == 0 {
				t.Errorf("%s (%s): no row in hostileREST", full, id)
			}
		}
	}
	if checked < 15 {
		t.Fatalf("only %d write and list RPCs found", checked)
	}
}
