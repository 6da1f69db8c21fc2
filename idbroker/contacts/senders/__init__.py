"""Senders: the SMS gateways (Kannel, a cloud SMS API) and SMTP, behind one small interface each."""
