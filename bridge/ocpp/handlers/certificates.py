"""The security extension's certificate messages (white paper M03-M05, A02): InstallCertificate,
DeleteCertificate, GetInstalledCertificateIds and CertificateSigned. Each is answered once the store
has been read or written (a thread job, no device I/O); a signed certificate takes over after the
answer is on the wire."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.ocpp.ports import CertificateControl, Replies

# DeleteCertificate's certificateHashData arrives with the library's snake_case keys
_HASH_KEYS = {
    "hash_algorithm": "hashAlgorithm", "issuer_name_hash": "issuerNameHash",
    "issuer_key_hash": "issuerKeyHash", "serial_number": "serialNumber",
}  # fmt: skip


class CertificateHandlers:
    def __init__(self, link: Replies, certificates: CertificateControl) -> None:
        self._link = link
        self._certificates = certificates

    @on(Action.install_certificate)
    async def install_certificate(
        self, certificate_type: str, certificate: str, **_: Any
    ) -> call_result.InstallCertificate:
        status = await self._certificates.install(str(certificate_type), certificate)
        return call_result.InstallCertificate(status=status)

    @on(Action.delete_certificate)
    async def delete_certificate(
        self, certificate_hash_data: dict[str, Any], **_: Any
    ) -> call_result.DeleteCertificate:
        wanted = {_HASH_KEYS.get(k, k): str(v) for k, v in certificate_hash_data.items()}
        status = await self._certificates.delete(wanted)
        return call_result.DeleteCertificate(status=status)

    @on(Action.get_installed_certificate_ids)
    async def get_installed_certificate_ids(
        self, certificate_type: str, **_: Any
    ) -> call_result.GetInstalledCertificateIds:
        found = await self._certificates.installed_ids(str(certificate_type))
        if not found:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(
            status="Accepted",
            certificate_hash_data=found,
        )

    @on(Action.certificate_signed)
    async def certificate_signed(self, certificate_chain: str, **_: Any) -> call_result.CertificateSigned:
        status = await self._certificates.certificate_signed(certificate_chain)
        if status == "Accepted":
            self._link.after_reply(self._certificates.switch_when_due)
        return call_result.CertificateSigned(status=status)
