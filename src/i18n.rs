//! The translation catalogue: every user-visible string, in French (the
//! default), Dutch and English, picked from `Accept-Language`.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    Nl,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    /// The first supported language of an `Accept-Language` header, by
    /// quality; French when none is.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.unwrap_or("").split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = match tag.split('-').next().unwrap_or("") {
                "fr" => Lang::Fr,
                "nl" => Lang::Nl,
                "en" => Lang::En,
                _ => continue,
            };
            if best.map(|(bq, _)| q > bq).unwrap_or(true) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::Fr)
    }
}

/// Looks up strings in one language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

type Table = HashMap<&'static str, &'static str>;

fn tables() -> &'static [Table; 3] {
    static T: OnceLock<[Table; 3]> = OnceLock::new();
    T.get_or_init(|| {
        [
            FR.iter().copied().collect(),
            NL.iter().copied().collect(),
            EN.iter().copied().collect(),
        ]
    })
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The string for `key`; French when this language lacks it, and the key
    /// itself when no language has it (a test keeps the catalogue complete).
    pub fn get<'k>(&self, key: &'k str) -> &'k str
    where
        'static: 'k,
    {
        let idx = match self.lang {
            Lang::Fr => 0,
            Lang::Nl => 1,
            Lang::En => 2,
        };
        let t = tables();
        t[idx]
            .get(key)
            .or_else(|| t[0].get(key))
            .copied()
            .unwrap_or(key)
    }

    /// The string for a kind-specific key such as `kind.expired.title`.
    pub fn kind(&self, kind: &str, part: &str) -> String {
        let key = format!("kind.{kind}.{part}");
        let idx = match self.lang {
            Lang::Fr => 0,
            Lang::Nl => 1,
            Lang::En => 2,
        };
        let t = tables();
        t[idx]
            .get(key.as_str())
            .or_else(|| t[0].get(key.as_str()))
            .map(|s| s.to_string())
            .unwrap_or(key)
    }
}

const FR: &[(&str, &str)] = &[
    ("form.add_child", "Ajouter un enfant"),
    ("form.remove_child", "Retirer cet enfant"),
    ("form.error.required", "Ce champ est obligatoire."),
    ("form.error.date", "Indiquez une date valide (AAAA-MM-JJ)."),
    ("form.error.role", "Choisissez dans la liste."),
    ("form.error.email", "Indiquez une adresse électronique valide."),
    ("form.error.too_long", "Ce texte est trop long."),
    ("form.error.child", "Renseignez au moins le nom, le prénom et la date de naissance (valide) de l'enfant."),
    ("form.error.children", "Un parent indique au moins un enfant."),
    ("form.error.contact", "Indiquez un courriel ou un téléphone pour que l'établissement puisse vous répondre."),
    ("form.error.phone", "Indiquez un numéro de téléphone valide."),
    ("form.sent.heading", "Votre demande est envoyée"),
    ("form.sent.text", "Merci. L'établissement va vérifier votre identité et relier votre compte. Revenez sur cette page avec le même lien pour suivre votre demande ; vous pouvez aussi la modifier en envoyant à nouveau le formulaire."),
    ("form.sent.back", "Revenir à la page de suivi"),
    ("form.too_many", "Trop d'envois en peu de temps. Réessayez dans quelques minutes."),
    ("form.closed", "Cette demande est close ; le formulaire n'est plus accepté."),
    ("app.name", "Connexion à l'établissement"),
    ("page.not_found", "Page introuvable"),
    ("page.not_found.text", "Cette adresse ne correspond à rien. Vérifiez le lien ou recommencez depuis le portail de votre établissement."),
    ("page.error", "Erreur du service"),
    ("page.error.text", "Le service a rencontré un problème. Réessayez dans quelques minutes ; si cela continue, contactez l'assistance."),
    ("failure.heading", "Identification impossible"),
    ("failure.what_happened", "Ce qui s'est passé"),
    ("failure.what_to_do", "Ce que vous pouvez faire"),
    ("failure.support_code", "Code à communiquer à l'assistance"),
    ("failure.status.open", "Votre demande est en attente de traitement par l'établissement."),
    ("failure.status.resolved", "Résolu : votre compte est maintenant relié. Vous pouvez vous reconnecter."),
    ("failure.status.dismissed", "L'établissement a clos cette demande sans relier de compte. Contactez-le si vous avez besoin d'aide."),
    ("failure.login_again", "Se reconnecter"),
    ("help.close_browser", "Fermez toutes les fenêtres de votre navigateur, puis reconnectez-vous depuis le portail de votre établissement (pas depuis un favori)."),
    ("help.private_window", "Essayez dans une fenêtre de navigation privée : Ctrl+Maj+P dans Firefox, Ctrl+Maj+N dans Chrome et Edge, Cmd+Maj+N dans Safari."),
    ("help.school_connected", "Vérifiez auprès de votre établissement qu'il est bien relié à ce service."),
    ("help.contact_support", "Si le problème continue, contactez l'assistance en donnant les informations ci-dessous."),
    ("help.clock", "Vérifiez la date et l'heure de votre appareil."),
    ("support.heading", "Pour l'assistance"),
    ("support.phone", "Téléphone"),
    ("support.email", "Courriel"),
    ("support.url", "Site d'aide"),
    ("support.code", "Code"),
    ("support.error", "Message d'erreur"),
    ("support.school", "Établissement"),
    ("support.portal", "Portail de connexion"),
    ("support.when", "Date et heure"),
    ("support.how", "Connexion"),
    ("support.how.value", "connexion automatique depuis le portail de l'établissement"),
    ("form.heading", "Formulaire d'identification"),
    ("form.intro", "Renseignez le formulaire puis cliquez sur Envoyer. L'établissement reliera votre compte ; vous pourrez ensuite vous reconnecter."),
    ("form.asserted", "Ce que votre portail nous a transmis"),
    ("form.last_name", "Nom"),
    ("form.first_name", "Prénom"),
    ("form.birth_date", "Date de naissance"),
    ("form.role", "Vous êtes"),
    ("form.role.student", "Élève"),
    ("form.role.parent", "Parent ou responsable"),
    ("form.role.teacher", "Enseignant"),
    ("form.role.staff", "Personnel"),
    ("form.class_name", "Classe"),
    ("form.email", "Courriel"),
    ("form.phone", "Téléphone"),
    ("form.message", "Commentaire"),
    ("form.children", "Enfants (pour les parents)"),
    ("form.child", "Enfant"),
    ("form.send", "Envoyer"),
    ("form.not_sent", "non transmis"),
    ("me.heading", "Vous êtes connecté"),
    ("me.account", "Compte"),
    ("me.school", "Établissement"),
    ("me.not_logged_in", "Vous n'êtes pas connecté. Connectez-vous depuis le portail de votre établissement."),
    ("login.unknown_idp", "Ce portail de connexion n'est pas connu de ce service."),
    ("login.no_redirect", "Ce portail ne permet pas de démarrer la connexion depuis ce service ; passez par le portail de votre établissement."),
    ("kind.malformed_request.title", "La demande de connexion est illisible"),
    ("kind.malformed_request.text", "Votre navigateur nous a transmis une demande de connexion incomplète ou abîmée. Cela vient souvent d'un lien enregistré, d'un retour arrière ou d'une extension du navigateur."),
    ("kind.unknown_issuer.title", "Portail de connexion inconnu"),
    ("kind.unknown_issuer.text", "Le portail par lequel vous arrivez n'est pas reconnu par ce service. Le lien entre ce portail et le service n'est pas (ou plus) en place."),
    ("kind.invalid_signature.title", "Contrôle de sécurité échoué"),
    ("kind.invalid_signature.text", "La connexion transmise par votre portail n'a pas passé nos contrôles de sécurité. Vous n'avez rien fait de mal ; recommencez depuis le portail."),
    ("kind.wrong_audience.title", "Connexion destinée à un autre service"),
    ("kind.wrong_audience.text", "Votre portail a envoyé cette connexion pour un autre service que celui-ci."),
    ("kind.expired.title", "La connexion a expiré"),
    ("kind.expired.text", "La connexion a pris trop de temps, ou l'horloge de votre appareil n'est pas à l'heure."),
    ("kind.replayed.title", "Connexion déjà utilisée"),
    ("kind.replayed.text", "Cette connexion a déjà servi, par exemple après un retour arrière ou un rechargement de la page. Chaque connexion ne sert qu'une fois."),
    ("kind.idp_error.title", "Votre portail a signalé une erreur"),
    ("kind.idp_error.text", "Le portail de votre établissement n'a pas pu vous identifier et nous l'a signalé."),
    ("kind.missing_school_code.title", "Établissement non transmis"),
    ("kind.missing_school_code.text", "Le système de votre établissement n'a pas transmis le code de l'établissement. C'est à l'établissement de corriger ses données ; prévenez-le."),
    ("kind.invalid_school_code.title", "Code d'établissement incorrect"),
    ("kind.invalid_school_code.text", "Le système de votre établissement a transmis un code d'établissement qui n'est ni un UAI ni un BRIN valide. Prévenez votre établissement."),
    ("kind.unknown_school.title", "Établissement non relié à ce service"),
    ("kind.unknown_school.text", "Votre établissement n'est pas (encore) relié à ce service."),
    ("kind.missing_subject.title", "Identifiant non transmis"),
    ("kind.missing_subject.text", "Votre portail n'a pas transmis votre identifiant. Prévenez votre établissement."),
    ("kind.identity_mismatch.title", "Identification impossible"),
    ("kind.identity_mismatch.text", "Nous n'avons pas trouvé votre compte à partir des informations transmises par votre portail."),
    ("kind.ambiguous_identity.title", "Plusieurs comptes correspondent"),
    ("kind.ambiguous_identity.text", "Plusieurs comptes portent les mêmes nom, prénom et date de naissance que vous. Nous ne choisissons pas au hasard."),
    ("kind.account_disabled.title", "Compte désactivé"),
    ("kind.account_disabled.text", "Votre compte existe mais a été désactivé (par exemple après un changement d'établissement). Contactez votre établissement."),
    ("demo.heading", "Fournisseur d'identité de démonstration"),
    ("demo.intro", "Chaque bouton envoie au service une réponse SAML signée par ce fournisseur de démonstration."),
    ("demo.send", "Se connecter"),
    ("demo.continue", "Continuer"),
];

const NL: &[(&str, &str)] = &[
    ("form.add_child", "Kind toevoegen"),
    ("form.remove_child", "Dit kind verwijderen"),
    ("form.error.required", "Dit veld is verplicht."),
    ("form.error.date", "Vul een geldige datum in (JJJJ-MM-DD)."),
    ("form.error.role", "Kies uit de lijst."),
    ("form.error.email", "Vul een geldig e-mailadres in."),
    ("form.error.too_long", "Deze tekst is te lang."),
    ("form.error.child", "Vul ten minste achternaam, voornaam en (geldige) geboortedatum van het kind in."),
    ("form.error.children", "Een ouder vult ten minste één kind in."),
    ("form.error.contact", "Vul een e-mailadres of telefoonnummer in zodat de school kan antwoorden."),
    ("form.error.phone", "Vul een geldig telefoonnummer in."),
    ("form.sent.heading", "Je melding is verstuurd"),
    ("form.sent.text", "Dank je. De school controleert je gegevens en koppelt je account. Kom met dezelfde link terug op deze pagina om je melding te volgen; je kunt haar ook aanpassen door het formulier opnieuw te versturen."),
    ("form.sent.back", "Terug naar de volgpagina"),
    ("form.too_many", "Te veel verzendingen in korte tijd. Probeer het over een paar minuten opnieuw."),
    ("form.closed", "Deze melding is gesloten; het formulier wordt niet meer aangenomen."),
    ("app.name", "Inloggen via je school"),
    ("page.not_found", "Pagina niet gevonden"),
    ("page.not_found.text", "Dit adres bestaat niet. Controleer de link of begin opnieuw vanaf het portaal van je school."),
    ("page.error", "Fout in de dienst"),
    ("page.error.text", "Er ging iets mis. Probeer het over een paar minuten opnieuw; blijft het gebeuren, neem dan contact op met de helpdesk."),
    ("failure.heading", "Inloggen niet gelukt"),
    ("failure.what_happened", "Wat er gebeurde"),
    ("failure.what_to_do", "Wat je kunt doen"),
    ("failure.support_code", "Code voor de helpdesk"),
    ("failure.status.open", "Je melding wacht op behandeling door de school."),
    ("failure.status.resolved", "Opgelost: je account is gekoppeld. Je kunt opnieuw inloggen."),
    ("failure.status.dismissed", "De school heeft deze melding gesloten zonder account te koppelen. Neem contact op met de school als je hulp nodig hebt."),
    ("failure.login_again", "Opnieuw inloggen"),
    ("help.close_browser", "Sluit alle vensters van je browser en log opnieuw in via het portaal van je school (niet via een bladwijzer)."),
    ("help.private_window", "Probeer een privévenster: Ctrl+Shift+P in Firefox, Ctrl+Shift+N in Chrome en Edge, Cmd+Shift+N in Safari."),
    ("help.school_connected", "Vraag je school of zij is aangesloten op deze dienst."),
    ("help.contact_support", "Blijft het probleem, neem dan contact op met de helpdesk en geef de gegevens hieronder door."),
    ("help.clock", "Controleer de datum en tijd van je apparaat."),
    ("support.heading", "Voor de helpdesk"),
    ("support.phone", "Telefoon"),
    ("support.email", "E-mail"),
    ("support.url", "Hulppagina"),
    ("support.code", "Code"),
    ("support.error", "Foutmelding"),
    ("support.school", "School"),
    ("support.portal", "Inlogportaal"),
    ("support.when", "Datum en tijd"),
    ("support.how", "Manier van inloggen"),
    ("support.how.value", "automatisch inloggen via het portaal van de school"),
    ("form.heading", "Identificatieformulier"),
    ("form.intro", "Vul het formulier in en klik op Versturen. De school koppelt je account; daarna kun je opnieuw inloggen."),
    ("form.asserted", "Wat je portaal ons doorgaf"),
    ("form.last_name", "Achternaam"),
    ("form.first_name", "Voornaam"),
    ("form.birth_date", "Geboortedatum"),
    ("form.role", "Je bent"),
    ("form.role.student", "Leerling"),
    ("form.role.parent", "Ouder of verzorger"),
    ("form.role.teacher", "Docent"),
    ("form.role.staff", "Medewerker"),
    ("form.class_name", "Klas"),
    ("form.email", "E-mail"),
    ("form.phone", "Telefoon"),
    ("form.message", "Opmerking"),
    ("form.children", "Kinderen (voor ouders)"),
    ("form.child", "Kind"),
    ("form.send", "Versturen"),
    ("form.not_sent", "niet doorgegeven"),
    ("me.heading", "Je bent ingelogd"),
    ("me.account", "Account"),
    ("me.school", "School"),
    ("me.not_logged_in", "Je bent niet ingelogd. Log in via het portaal van je school."),
    ("login.unknown_idp", "Dit inlogportaal is niet bekend bij deze dienst."),
    ("login.no_redirect", "Via dit portaal kan het inloggen niet vanaf deze dienst beginnen; ga via het portaal van je school."),
    ("kind.malformed_request.title", "Het inlogverzoek is onleesbaar"),
    ("kind.malformed_request.text", "Je browser stuurde een onvolledig of beschadigd inlogverzoek. Dat komt vaak door een bewaarde link, de terugknop of een browserextensie."),
    ("kind.unknown_issuer.title", "Onbekend inlogportaal"),
    ("kind.unknown_issuer.text", "Het portaal waarvandaan je komt, is niet bekend bij deze dienst (onbekende Entity ID)."),
    ("kind.invalid_signature.title", "Beveiligingscontrole mislukt"),
    ("kind.invalid_signature.text", "De inloggegevens van je portaal kwamen niet door onze beveiligingscontrole. Jij hebt niets fout gedaan; begin opnieuw via het portaal."),
    ("kind.wrong_audience.title", "Inloggen bedoeld voor een andere dienst"),
    ("kind.wrong_audience.text", "Je portaal stuurde deze inlog naar een andere dienst dan deze."),
    ("kind.expired.title", "De inlog is verlopen"),
    ("kind.expired.text", "Het inloggen duurde te lang, of de klok van je apparaat staat niet goed."),
    ("kind.replayed.title", "Inlog al gebruikt"),
    ("kind.replayed.text", "Deze inlog is al gebruikt, bijvoorbeeld na de terugknop of het herladen van de pagina. Elke inlog werkt maar één keer."),
    ("kind.idp_error.title", "Je portaal meldde een fout"),
    ("kind.idp_error.text", "Het portaal van je school kon je niet identificeren en heeft dat aan ons gemeld."),
    ("kind.missing_school_code.title", "School niet doorgegeven"),
    ("kind.missing_school_code.text", "Het systeem van je school gaf geen BRIN door. De school moet haar gegevens verbeteren; laat het de school weten."),
    ("kind.invalid_school_code.title", "Onjuiste schoolcode"),
    ("kind.invalid_school_code.text", "Het systeem van je school gaf een schoolcode door die geen geldige BRIN of UAI is. Laat het je school weten."),
    ("kind.unknown_school.title", "School niet aangesloten"),
    ("kind.unknown_school.text", "Je school is (nog) niet aangesloten op deze dienst."),
    ("kind.missing_subject.title", "Gebruikersnaam niet doorgegeven"),
    ("kind.missing_subject.text", "Je portaal gaf je gebruikersnaam niet door. Laat het je school weten."),
    ("kind.identity_mismatch.title", "Inloggen niet gelukt"),
    ("kind.identity_mismatch.text", "We konden je account niet vinden met de gegevens van je portaal."),
    ("kind.ambiguous_identity.title", "Meerdere accounts passen"),
    ("kind.ambiguous_identity.text", "Meerdere accounts hebben dezelfde naam, voornaam en geboortedatum als jij. We kiezen niet op goed geluk."),
    ("kind.account_disabled.title", "Account uitgeschakeld"),
    ("kind.account_disabled.text", "Je account bestaat, maar is uitgeschakeld (bijvoorbeeld na een schoolwissel). Neem contact op met je school."),
    ("demo.heading", "Demo-identiteitsprovider"),
    ("demo.intro", "Elke knop stuurt de dienst een SAML-antwoord dat door deze demoprovider is ondertekend."),
    ("demo.send", "Inloggen"),
    ("demo.continue", "Doorgaan"),
];

const EN: &[(&str, &str)] = &[
    ("form.add_child", "Add a child"),
    ("form.remove_child", "Remove this child"),
    ("form.error.required", "This field is required."),
    ("form.error.date", "Give a valid date (YYYY-MM-DD)."),
    ("form.error.role", "Choose from the list."),
    ("form.error.email", "Give a valid e-mail address."),
    ("form.error.too_long", "This text is too long."),
    ("form.error.child", "Give at least the child's last name, first name and (valid) birth date."),
    ("form.error.children", "A parent gives at least one child."),
    ("form.error.contact", "Give an e-mail address or a phone number so the school can answer you."),
    ("form.error.phone", "Give a valid phone number."),
    ("form.sent.heading", "Your request is sent"),
    ("form.sent.text", "Thank you. The school will check your identity and link your account. Come back to this page with the same link to follow your request; you can also change it by sending the form again."),
    ("form.sent.back", "Back to the follow-up page"),
    ("form.too_many", "Too many submissions in a short time. Try again in a few minutes."),
    ("form.closed", "This request is closed; the form is no longer accepted."),
    ("app.name", "School login"),
    ("page.not_found", "Page not found"),
    ("page.not_found.text", "Nothing is at this address. Check the link or start again from your school's portal."),
    ("page.error", "Service error"),
    ("page.error.text", "The service ran into a problem. Try again in a few minutes; if it goes on, contact support."),
    ("failure.heading", "Login failed"),
    ("failure.what_happened", "What happened"),
    ("failure.what_to_do", "What you can do"),
    ("failure.support_code", "Code to give to support"),
    ("failure.status.open", "Your request is waiting for the school to handle it."),
    ("failure.status.resolved", "Resolved: your account is now linked. Log in again."),
    ("failure.status.dismissed", "The school closed this request without linking an account. Contact the school if you need help."),
    ("failure.login_again", "Log in again"),
    ("help.close_browser", "Close every window of your browser, then log in again from your school's portal (not from a bookmark)."),
    ("help.private_window", "Try a private window: Ctrl+Shift+P in Firefox, Ctrl+Shift+N in Chrome and Edge, Cmd+Shift+N in Safari."),
    ("help.school_connected", "Check with your school that it is connected to this service."),
    ("help.contact_support", "If the problem goes on, contact support with the details below."),
    ("help.clock", "Check the date and time of your device."),
    ("support.heading", "For support"),
    ("support.phone", "Phone"),
    ("support.email", "E-mail"),
    ("support.url", "Help page"),
    ("support.code", "Code"),
    ("support.error", "Error message"),
    ("support.school", "School"),
    ("support.portal", "Login portal"),
    ("support.when", "Date and time"),
    ("support.how", "Login"),
    ("support.how.value", "automatic login from the school's portal"),
    ("form.heading", "Identification form"),
    ("form.intro", "Fill in the form, then click Send. The school will link your account; you can then log in again."),
    ("form.asserted", "What your portal sent us"),
    ("form.last_name", "Last name"),
    ("form.first_name", "First name"),
    ("form.birth_date", "Birth date"),
    ("form.role", "You are"),
    ("form.role.student", "Pupil"),
    ("form.role.parent", "Parent or guardian"),
    ("form.role.teacher", "Teacher"),
    ("form.role.staff", "Staff"),
    ("form.class_name", "Class"),
    ("form.email", "E-mail"),
    ("form.phone", "Phone"),
    ("form.message", "Comment"),
    ("form.children", "Children (for parents)"),
    ("form.child", "Child"),
    ("form.send", "Send"),
    ("form.not_sent", "not sent"),
    ("me.heading", "You are logged in"),
    ("me.account", "Account"),
    ("me.school", "School"),
    ("me.not_logged_in", "You are not logged in. Log in from your school's portal."),
    ("login.unknown_idp", "This login portal is not known to this service."),
    ("login.no_redirect", "This portal cannot start a login from this service; go through your school's portal."),
    ("kind.malformed_request.title", "The login request is unreadable"),
    ("kind.malformed_request.text", "Your browser sent us an incomplete or damaged login request. A saved link, the back button or a browser extension often causes this."),
    ("kind.unknown_issuer.title", "Unknown login portal"),
    ("kind.unknown_issuer.text", "The portal you came from is not known to this service: the link between that portal and this service is not (or no longer) in place."),
    ("kind.invalid_signature.title", "Security check failed"),
    ("kind.invalid_signature.text", "The login your portal sent did not pass our security checks. You did nothing wrong; start again from the portal."),
    ("kind.wrong_audience.title", "Login meant for another service"),
    ("kind.wrong_audience.text", "Your portal sent this login for a service other than this one."),
    ("kind.expired.title", "The login expired"),
    ("kind.expired.text", "The login took too long, or your device's clock is wrong."),
    ("kind.replayed.title", "Login already used"),
    ("kind.replayed.text", "This login was already used, for example after the back button or a page reload. Each login works once."),
    ("kind.idp_error.title", "Your portal reported an error"),
    ("kind.idp_error.text", "Your school's portal could not identify you and told us so."),
    ("kind.missing_school_code.title", "School not sent"),
    ("kind.missing_school_code.text", "Your school's system did not send the school code. The school has to correct its data; let it know."),
    ("kind.invalid_school_code.title", "Wrong school code"),
    ("kind.invalid_school_code.text", "Your school's system sent a school code that is neither a valid UAI nor a BRIN. Let your school know."),
    ("kind.unknown_school.title", "School not connected to this service"),
    ("kind.unknown_school.text", "Your school is not (yet) connected to this service."),
    ("kind.missing_subject.title", "Identifier not sent"),
    ("kind.missing_subject.text", "Your portal did not send your identifier. Let your school know."),
    ("kind.identity_mismatch.title", "Identification impossible"),
    ("kind.identity_mismatch.text", "We could not find your account from what your portal sent."),
    ("kind.ambiguous_identity.title", "Several accounts match"),
    ("kind.ambiguous_identity.text", "Several accounts have the same last name, first name and birth date as you. We do not pick one at random."),
    ("kind.account_disabled.title", "Account deactivated"),
    ("kind.account_disabled.text", "Your account exists but was deactivated (for example after a change of school). Contact your school."),
    ("demo.heading", "Demo identity provider"),
    ("demo.intro", "Each button sends the service a SAML response signed by this demo provider."),
    ("demo.send", "Log in"),
    ("demo.continue", "Continue"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::FailureKind;

    #[test]
    fn every_language_has_every_key() {
        let keys = |t: &[(&'static str, &'static str)]| {
            t.iter()
                .map(|(k, _)| *k)
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(keys(FR), keys(NL), "French and Dutch differ");
        assert_eq!(keys(FR), keys(EN), "French and English differ");
        assert_eq!(keys(FR).len(), FR.len(), "a key appears twice");
    }

    #[test]
    fn every_failure_kind_has_a_title_and_an_explanation() {
        for lang in [Lang::Fr, Lang::Nl, Lang::En] {
            let t = Tr::new(lang);
            for k in FailureKind::ALL {
                for part in ["title", "text"] {
                    let s = t.kind(k.as_str(), part);
                    assert!(!s.starts_with("kind."), "{lang:?} lacks {s}");
                }
            }
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::from_accept_language(None), Lang::Fr);
        assert_eq!(
            Lang::from_accept_language(Some("nl-NL,nl;q=0.9,en;q=0.8")),
            Lang::Nl
        );
        assert_eq!(
            Lang::from_accept_language(Some("de-DE,en;q=0.5,fr;q=0.7")),
            Lang::Fr
        );
        assert_eq!(
            Lang::from_accept_language(Some("de, en-GB;q=0.3")),
            Lang::En
        );
    }
}
