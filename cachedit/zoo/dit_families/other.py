"""Families of other modalities on their offline replicas: RFD4-Proteina designs a protein of a few residues."""

from __future__ import annotations

import diffusers
import torch

from ..zoo_entry import ZooEntry

RESIDUES = 8  # tokens of the replica's protein


def _rfd4_transformer(**o):
    # Only the features that need no annotation from the CIF preprocessor (`rfd4-proteina-prep`); the released
    # checkpoint also reads secondary structure, contacts, motif coordinates, ... which absent would be zeros anyway.
    return diffusers.RFD4ProteinaTransformer(**{**dict(
        nlayers=10, token_dim=32, nheads=2, dim_cond=32, pair_repr_dim=16, latent_dim=8, token_type_emb_dim=8,
        cath_emb_dim=4, t_emb_dim=16, seq_sep_dim=8, xt_pair_dist_dim=8, tri_mult_c=8,
        feats_seq=("xt_bb_ca", "xt_local_latents", "token_type", "sequence_probabilities", "chain_centroid_xyz"),
        feats_pair_repr=("xt_bb_ca_pair_dists", "bond_mask", "molecule_idx_pair", "molecule_entity_pair",
                         "index_group_pair", "token_bond_path_length")), **o})


def _rfd4_components():
    # The hub config's scheduler settings are not known offline: the backbone gets the log schedule, the latents the
    # power one; one fine tail step so that a handful of steps is a valid schedule.
    scheduler = diffusers.RFD4ProteinaScheduler
    return dict(
        vae=diffusers.RFD4ProteinaAutoencoder(
            atom37_mask=[[True] * 5 + [False] * 32] * 147, allowed_residue_types=[[True] * 147] * 7, latent_dim=8,
            nlayers=1, token_dim=32, nheads=2, dim_cond=16, pair_repr_dim=16, token_type_emb_dim=8),
        bb_ca_scheduler=scheduler(schedule_mode="log", noise_mode="1/t", tsr_k=1.0, tsr_sigma=1.0, tail_steps=1),
        local_latents_scheduler=scheduler(schedule_mode="power", noise_mode="tan", tsr_k=1.0, tsr_sigma=1.0,
                                          tail_steps=1))


def _rfd4_steps(pipe, num_inference_steps: int) -> None:
    # The call's step count is len(recycle_depths); one trunk pass per step (the released schedule runs up to six,
    # each a pass over every trunk layer inside one transformer call).
    pipe.register_to_config(recycle_depths=[1] * num_inference_steps)


def _rfd4_inputs(pipe, prompt, negative):
    """Unconditional design of one chain of `RESIDUES` protein residues: the tensors the CIF preprocessor would
    emit for it (masks, an all-unknown sequence, one molecule, bond path lengths along the chain)."""
    real, chain = torch.ones(1, RESIDUES, dtype=torch.bool), torch.zeros(1, RESIDUES, dtype=torch.long)
    index = torch.arange(RESIDUES)
    conditioning = {
        "condition_sequence_1_residue": chain, "molecule_iid": chain, "molecule_entity_id": chain,
        "condition_index-group_1_token": chain, "token_bond_path_length": (index[:, None] - index).abs()[None],
    }
    return dict(padding_mask=real, is_in_context_conditioning=~real, supports_local_latent=real, token_type=chain,
                conditioning_features=conditioning)


ENTRIES: list[ZooEntry] = [
    # A protein of 8 residues; the output is its atom37 coordinates in nanometers, (1, 8, 37, 3).
    ZooEntry("rfd4_proteina", "RFD4ProteinaPipeline", _rfd4_transformer, _rfd4_components, _rfd4_inputs,
         takes_size=False, output="coords_nm", steps=_rfd4_steps),
]
