//! The site page's Settings panel: the environment settings the site's application offers
//! (the built-in CMS's tagline and visitor password). Owners and admins change them; others
//! read them. A secret is written, never shown: its field starts empty, empty keeps it,
//! and "Remove" takes it away.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::dashboard::Panel;
use super::forms::{ConfirmSubmit, Field, FormError, Submit, field_error, general_error};
use crate::sites::{SaveSiteSettings, SettingRow, UnsetSiteSetting};

/// The panel's two actions, kept by the page (outside the view that live updates render
/// again), so a form's answer outlasts it.
#[derive(Clone, Copy)]
pub struct SettingsActions {
    pub save: ServerAction<SaveSiteSettings>,
    pub unset: ServerAction<UnsetSiteSetting>,
}

#[component]
pub fn SiteSettings(
    site_id: String,
    settings: Vec<SettingRow>,
    can_manage: bool,
    actions: SettingsActions,
) -> impl IntoView {
    if settings.is_empty() {
        return ().into_any();
    }
    let SettingsActions { save, unset } = actions;
    let saved = move || {
        save.value()
            .get()
            .and_then(|result| result.ok())
            .map(|changed| {
                if changed == 0 {
                    "Nothing changed.".to_owned()
                } else {
                    "Saved: the site restarts with its new settings (see Deployments).".to_owned()
                }
            })
    };
    let body = if can_manage {
        let set_secrets: Vec<SettingRow> = settings
            .iter()
            .filter(|s| s.secret && s.is_set)
            .cloned()
            .collect();
        let id = site_id.clone();
        view! {
            <ActionForm action=save attr:class="space-y-3" attr:data-form="site-settings">
                <input type="hidden" name="id" value=site_id.clone() />
                <FormError error=general_error(save.value()) />
                {settings
                    .into_iter()
                    .map(|setting| {
                        let error = field_error(save, setting.input());
                        let (kind, value, hint, autocomplete) = if setting.secret {
                            let state = if setting.is_set {
                                "Set. Leave empty to keep it."
                            } else {
                                "Not set."
                            };
                            (
                                "password",
                                String::new(),
                                format!("{} {state}", setting.help),
                                "new-password",
                            )
                        } else {
                            (
                                "text",
                                setting.value.clone().unwrap_or_default(),
                                setting.help.clone(),
                                "off",
                            )
                        };
                        view! {
                            <div data-setting=setting.key.clone()>
                                <Field
                                    label=setting.label.clone()
                                    name=setting.input()
                                    kind
                                    autocomplete
                                    value
                                    hint
                                    error
                                />
                            </div>
                        }
                    })
                    .collect_view()}
                <Submit label="Save settings" />
                {move || {
                    saved()
                        .map(|words| {
                            view! {
                                <p class="text-sm text-green-800" role="status" data-notice="">
                                    {words}
                                </p>
                            }
                        })
                }}
            </ActionForm>
            {set_secrets
                .into_iter()
                .map(|setting| {
                    let form = format!("unset-{}", setting.key);
                    let id = id.clone();
                    view! {
                        <ActionForm action=unset attr:class="mt-3" attr:data-form=form>
                            <input type="hidden" name="id" value=id />
                            <input type="hidden" name="key" value=setting.key.clone() />
                            <ConfirmSubmit
                                label="Remove"
                                question=format!(
                                    "Remove the {}? The site goes back to working without it.",
                                    setting.label.to_lowercase(),
                                )
                                confirm="Remove it"
                            />
                        </ActionForm>
                    }
                })
                .collect_view()}
            <FormError error=general_error(unset.value()) />
        }
        .into_any()
    } else {
        view! {
            <dl class="grid gap-2 text-sm sm:grid-cols-2" data-settings="">
                {settings
                    .into_iter()
                    .map(|setting| {
                        let shown = match (&setting.value, setting.secret, setting.is_set) {
                            (_, true, true) => "Set".to_owned(),
                            (Some(value), false, _) => value.clone(),
                            _ => "Not set".to_owned(),
                        };
                        view! {
                            <div data-setting=setting.key.clone()>
                                <dt class="text-slate-600">{setting.label.clone()}</dt>
                                <dd class="font-medium break-words">{shown}</dd>
                            </div>
                        }
                    })
                    .collect_view()}
            </dl>
        }
        .into_any()
    };
    view! {
        <Panel
            title="Settings"
            note="What this site's application lets you set. Saving restarts the site with the new settings, in a few seconds."
        >
            {body}
        </Panel>
    }
        .into_any()
}
