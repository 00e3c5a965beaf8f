// Package sweden holds the Swedish reference data and identifier checks the
// services share. It is data, not a region: which municipalities a hub
// covers is configured.
//
//   - Municipalities: SCB municipality codes (kommunkoder).
//   - ParseOrganisationNumber: a legal person's organisation number,
//     normalised NNNNNN-NNNN (companies, providers).
//   - ParsePersonalIdentityNumber: a personnummer or samordningsnummer, with
//     its birth date and a masked form (participants).
//   - ParseSNICode, SNISectionOf: SNI 2007 industry codes and their sections.
//   - LooksLikePersonalIdentityNumber: whether text holds something written
//     like a personnummer, for fields that must never hold one.
//
// The parsers' errors are written for the person who typed the value, so a
// service puts them straight into a field violation:
//
//	n, err := sweden.ParseOrganisationNumber(req.GetCompany().GetOrganisationNumber())
//	if err != nil {
//		v.Add("company.organisation_number", "%v", err) // "has a wrong check digit: …"
//	}
//
// They never repeat the value, since a personal identity number is personal
// data and error messages reach logs; errors.Is tells the reason
// (ErrCheckDigit, ErrNotLegalPerson, …). Tests and examples use Skatteverket's
// published example and test numbers, or numbers built with a computed check
// digit, never a real person's.
package sweden
