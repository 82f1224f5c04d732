<?php
// EduConnect attribute OIDs (prefix urn:oid:1.3.6.1.4.1.20326.10.999.1.), as
// listed in the project's field notes (/work/shared/NOTES.md). Used together
// with SimpleSAMLphp's own name2oid by options/oid-attributes.php.
// Copied into WORKDIR/attributemap/ by ../../start.
$attributemap = [
    'FrEduCtPersonAffiliation' => 'urn:oid:1.3.6.1.4.1.20326.10.999.1.7',
    'FrEduCtId' => 'urn:oid:1.3.6.1.4.1.20326.10.999.1.57',
    'FrEduCtDateNaissance' => 'urn:oid:1.3.6.1.4.1.20326.10.999.1.67',
    'FrEduCtEleveUAI' => 'urn:oid:1.3.6.1.4.1.20326.10.999.1.72',
];
