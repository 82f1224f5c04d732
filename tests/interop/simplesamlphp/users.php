<?php
/*
 * Test users of the SimpleSAMLphp test IdP (exampleauth:UserPass).
 * Keys are "username:password"; values are the attributes released, each a
 * list of strings. `start` copies this into WORKDIR/config/authsources.php.
 *
 * The attributes imitate a French ENT (ENTPerson*, ENTStructureUAI, ...) and,
 * for `leerling`, the Dutch Entree Federatie. Every user has `uid` (the
 * persistent NameID is derived from it, see README.md) and
 * `eduPersonPrincipalName` (SimpleSAMLphp 1.19's default UserID attribute).
 * 0751234J is a valid UAI (check letter), 12AB a valid BRIN.
 */
return [
    // A pupil: dates in ISO form, accented first name.
    'pupil:pupil' => [
        'uid' => ['pupil'],
        'eduPersonPrincipalName' => ['pupil@ent.test'],
        'ENTPersonJointure' => ['ENT$1234567'],
        'eduPersonTargetedID' => ['ent-tid-pupil-3f9a1c'],
        'ENTPersonLogin' => ['lea.martin'],
        'sn' => ['Martin'],
        'givenName' => ['Léa'],
        'ENTPersonDateNaissance' => ['2011-03-14'],
        'ENTStructureUAI' => ['0751234J'],
        'ENTPersonStructRattach' => ['0751234J'],
        'ENTEleveClasses' => ['0751234J$6A'],
        'ENTPersonProfils' => ['National_ELV'],
        'eduPersonAffiliation' => ['student'],
        'mail' => ['lea.martin@ent.test'],
    ],
    // A parent of the pupil: birth date in the DD/MM/YYYY form many ENTs use.
    'parent:parent' => [
        'uid' => ['parent'],
        'eduPersonPrincipalName' => ['parent@ent.test'],
        'ENTPersonJointure' => ['ENT$2345678'],
        'eduPersonTargetedID' => ['ent-tid-parent-8b2e47'],
        'ENTPersonLogin' => ['sophie.martin'],
        'sn' => ['Martin'],
        'givenName' => ['Sophie'],
        'ENTPersonDateNaissance' => ['02/06/1980'],
        'ENTStructureUAI' => ['0751234J'],
        'ENTPersonStructRattach' => ['0751234J'],
        'ENTPersonProfils' => ['National_TUT'],
        'eduPersonAffiliation' => ['affiliate'],
        'mail' => ['sophie.martin@ent.test'],
    ],
    // A teacher: hyphenated first name, multi-valued affiliation, and a
    // SAML V2.0 Subject Identifier attribute (urn:oasis:names:tc:SAML:attribute:subject-id).
    'teacher:teacher' => [
        'uid' => ['teacher'],
        'eduPersonPrincipalName' => ['teacher@ent.test'],
        'ENTPersonJointure' => ['ENT$3456789'],
        'eduPersonTargetedID' => ['ent-tid-teacher-51d0aa'],
        'urn:oasis:names:tc:SAML:attribute:subject-id' => ['jf.dupont-7f3a@ent.test'],
        'ENTPersonLogin' => ['jean-francois.dupont'],
        'sn' => ['Dupont'],
        'givenName' => ['Jean-François'],
        'ENTPersonDateNaissance' => ['1975-11-30'],
        'ENTStructureUAI' => ['0751234J'],
        'ENTPersonStructRattach' => ['0751234J'],
        'ENTPersonProfils' => ['National_ENS'],
        'eduPersonAffiliation' => ['employee', 'faculty'],
        'mail' => ['jean-francois.dupont@ent.test'],
    ],
    // An Entree Federatie (NL) pupil: BRIN instead of UAI, uid = subject.
    'leerling:leerling' => [
        'uid' => ['leerling'],
        'eduPersonPrincipalName' => ['leerling@entree.test'],
        'sn' => ['Jansen'],
        'givenName' => ['Daan'],
        'eduPersonAffiliation' => ['student'],
        'nlEduPersonHomeOrganizationId' => ['12AB'],
        'nlEduPersonHomeOrganization' => ['De Test School'],
    ],
    // The same pupil as `pupil`, as EduConnect describes her (FrEduCt*
    // attributes; by urn:oid with options/oid-attributes.php).
    'educonnect:educonnect' => [
        'uid' => ['educonnect'],
        'eduPersonPrincipalName' => ['educonnect@educonnect.test'],
        'FrEduCtId' => ['f1b2c3d4-0e5f-4a6b-8c7d-9e0f1a2b3c4d'],
        'FrEduCtPersonAffiliation' => ['eleve2d'],
        'FrEduCtEleveUAI' => ['0751234J'],
        'FrEduCtDateNaissance' => ['2011-03-14'],
        'sn' => ['Martin'],
        'givenName' => ['Léa'],
        'eduPersonAffiliation' => ['student'],
    ],
    // A pupil whose ENT sends no school code at all (missing_school_code case).
    'nouai:nouai' => [
        'uid' => ['nouai'],
        'eduPersonPrincipalName' => ['nouai@ent.test'],
        'ENTPersonJointure' => ['ENT$4567890'],
        'sn' => ['Bernard'],
        'givenName' => ['Hugo'],
        'ENTPersonDateNaissance' => ['2010-09-01'],
        'eduPersonAffiliation' => ['student'],
    ],
];
