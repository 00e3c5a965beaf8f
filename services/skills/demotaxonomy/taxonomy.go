// Package demotaxonomy is the demo skills taxonomy: about 80 skills of the
// industries in the hub's region (vehicles and EV batteries, automation,
// welding, CNC, lean production, industrial safety, logistics, retail,
// hospitality, Swedish for the workplace, communication, project
// management, digital basics), in Swedish and English, with a broader
// hierarchy. The data is taxonomy.json, an ImportSkillsRequest in JSON,
// which `kompetensnav import-skills` also reads. It names no ESCO URIs or
// JobTech concept ids: the demo invents none.
package demotaxonomy

import _ "embed"

// JSON is taxonomy.json: {"skills": [...]}, as ImportSkills takes it.
//
//go:embed taxonomy.json
var JSON []byte
