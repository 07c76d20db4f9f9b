"""The console's WTForms forms. Every POST is also CSRF-checked by ``CSRFProtect``; the
settings screens, whose inputs come from plugin schemas, use ``EditForm`` for the token and the
fingerprint of the file the page was made from (``fields`` renders the inputs)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp

__all__ = ["SignInForm", "EditForm", "NewOrgForm", "ActionForm", "TraceForm"]


class SignInForm(FlaskForm):
    """The admin's sign-in."""

    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class ActionForm(FlaskForm):
    """A button-only form (sign out, retry a dead letter, run check): the CSRF token only."""


class EditForm(FlaskForm):
    """A settings screen: the token, and the fingerprint of the file the page was made from."""

    fingerprint = HiddenField()


class NewOrgForm(EditForm):
    """Create an organisation."""

    name = StringField(
        "Name",
        validators=[
            DataRequired(),
            Length(max=40),
            Regexp(
                r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
                message="letters, digits, '-' and '_' (it is part of the endpoint URLs)",
            ),
        ],
    )
    plan = SelectField("Plan", validate_choice=True)
    crm = SelectField("CRM", validate_choice=True)
    event_platform = SelectField("Event platform", validate_choice=True)


class TraceForm(FlaskForm):
    """Look up one record's trace (a GET form: no token needed)."""

    class Meta:
        csrf = False

    flow = SelectField("Flow", validate_choice=False)
    entity = StringField("Record id", validators=[DataRequired()])
    values = BooleanField("Show the values written (personal data)")
